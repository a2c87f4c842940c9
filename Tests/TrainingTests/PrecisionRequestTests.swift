// `--precision`: bf16 runs fp32 and says why (no bfloat16 kernel is tested yet, and a CPU without
// AVX512_BF16 has none to give), bf16-emulated gives bfloat16's numerics, and the session sets
// what the process multiplies.
import Tensors
import Training
import XCTest

final class PrecisionRequestTests: XCTestCase {
  func testWhatEachNameGives() throws {
    XCTAssertEqual(PrecisionRequest.fp32.precision, .fp32)
    XCTAssertNil(PrecisionRequest.fp32.resolved.notice)
    let bf16 = PrecisionRequest.bf16.resolved
    XCTAssertEqual(bf16.precision, .fp32, "no bfloat16 kernel is tested yet: bf16 runs fp32")
    let notice = try XCTUnwrap(bf16.notice)
    XCTAssertTrue(notice.contains(CPU.hasAVX512BF16 ? "has AVX512_BF16, but" : "has no AVX512_BF16"), notice)
    XCTAssertTrue(notice.contains("so this run is fp32"), notice)
    XCTAssertEqual(PrecisionRequest(rawValue: "bf16-emulated")?.precision, .bf16Emulated)
    XCTAssertTrue(PrecisionRequest.bf16Emulated.resolved.notice?.contains("slower than fp32") ?? false)
    XCTAssertNil(PrecisionRequest(rawValue: "fp16"))
  }

  func testTheSpecDefinesTheRunOnlyWhenNotFP32() {
    var spec = TrainingSpec(data: "d", out: "o")
    XCTAssertNil(spec.defining["precision"], "runs made before --precision existed still resume")
    spec.precision = .bf16Emulated
    XCTAssertEqual(spec.defining["precision"], "bf16-emulated")
  }
}

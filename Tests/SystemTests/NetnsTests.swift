// Two "hosts" in network namespaces, MPI over TCP between them: the same losses and weights as
// one process.
import Foundation
import Tensors
import TestSupport
import XCTest

final class NetnsTests: XCTestCase {
  static let harness = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("cluster/netns.sh").path

  func testTwoHostsOverTCPTrainLikeOneProcess() throws {
    guard getuid() == 0 else {
      throw XCTSkip("network namespaces need root; this process cannot create them")
    }
    let up = try Harness.run("/bin/bash", [Self.harness, "up", "2"], limit: 60)
    defer { _ = try? Harness.run("/bin/bash", [Self.harness, "down"], limit: 60) }
    if up.status != 0 {
      throw XCTSkip("cannot create network namespaces here: \(up.output)")
    }
    // One step's gradients from the same weights (see MPIRunTests.testOneTwoAndThreeRanksComputeOneProcesssStep).
    let arguments = [
      "bench", "--model", "resnet18", "--width", "0.0625", "--stem", "small", "--image-size", "12",
      "--classes", "5", "--steps", "1", "--warmup", "0", "--learning-rate", "0.2", "--threads", "1", "--batch", "10",
    ]
    let single = Harness.temporaryFile("netns-single.safetensors")
    let emulated = Harness.temporaryFile("netns-single-bf16.safetensors")
    let hosts = Harness.temporaryFile("netns-hosts.safetensors")
    let one = try Harness.run(Harness.binary, arguments + ["--dump-gradients", single])
    XCTAssertEqual(one.status, 0, one.output)
    let bf16 = try Harness.run(Harness.binary, arguments + ["--precision", "bf16-emulated", "--dump-gradients", emulated])
    XCTAssertEqual(bf16.status, 0, bf16.output)
    let two = try Harness.run("/bin/bash", [Self.harness, "run", "2", "--", Harness.binary] + arguments + ["--dump-gradients", hosts], limit: 180)
    XCTAssertEqual(two.status, 0, two.output)
    XCTAssertTrue(two.output.contains("MPI: 2 ranks"), two.output)
    let reference = try MPIRunTests.gradients(in: single)
    let split = relativeNormDifference(try MPIRunTests.gradients(in: hosts), reference, relativeTo: reference)
    let rounding = relativeNormDifference(try MPIRunTests.gradients(in: emulated), reference, relativeTo: reference)
    print(String(format: "2 hosts over TCP vs 1 process: one step's gradients %.2e (relative L2); bf16 against fp32 %.2e", split, rounding))
    // The bound of MPIRunTests.testOneTwoAndThreeRanksComputeOneProcesssStep, derived there: the
    // split reorders fp32 sums only, about n 2^-15 = 0.053 of bfloat16's own effect.
    XCTAssertLessThan(split, 0.053 * rounding)
  }

  /// A link shaped to 100 Mb/s carries a large all-reduce at about that rate (tbf holds it to its
  /// token rate; only the burst passes faster), and bench --comm writes a profile that fits it;
  /// the same profile then predicts a step on 3 ranks.
  func testShapedLinksCarryTheirRateAndTheProfileSaysSo() throws {
    guard getuid() == 0 else {
      throw XCTSkip("network namespaces need root; this process cannot create them")
    }
    let up = try Harness.run("/bin/bash", [Self.harness, "up", "2", "--rate-gbps", "0.1"], limit: 60)
    defer { _ = try? Harness.run("/bin/bash", [Self.harness, "down"], limit: 60) }
    if up.status != 0 {
      throw XCTSkip("cannot create shaped network namespaces here: \(up.output)")
    }
    XCTAssertTrue(up.output.contains("links: 0.1 Gb/s"), up.output)
    let profile = Harness.temporaryFile("netns-profile.json")
    let model = ["--model", "resnet18", "--width", "0.0625", "--stem", "small", "--image-size", "12", "--threads", "1", "--batch", "8"]
    let measured = try Harness.run(
      "/bin/bash", [Self.harness, "run", "2", "--", Harness.binary, "bench"] + model + ["--comm", "--out", profile], limit: 300)
    XCTAssertEqual(measured.status, 0, measured.output)
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: profile))) as! [String: Any]
    let points = json["points"] as! [[String: Any]]
    // The largest all-reduce (4 MB): each rank sends and receives the whole buffer once.
    let largest = points.filter { $0["collective"] as? String == "allreduce" }.max { ($0["bytes"] as! Int) < ($1["bytes"] as! Int) }!
    let rate = Double(largest["bytes"] as! Int) * 8 / (largest["seconds"] as! Double) / 1e9
    print(String(format: "shaped to 0.1 Gb/s: a %d-byte all-reduce ran at %.4f Gb/s", largest["bytes"] as! Int, rate))
    // Unshaped, the veth moves several Gb/s. tbf lets a burst through above its rate (so a
    // little over 0.1), and TCP and the two phases of the ring lose some (so a little under):
    // 0.04-0.15 holds the shaping and rules out both an unshaped and a stalled link.
    XCTAssertGreaterThan(rate, 0.04, "the link is far slower than it was shaped to be")
    XCTAssertLessThan(rate, 0.15, "the shaping did not hold the link to its rate")
    // The profile drives a prediction: on the slow link, communication is most of the step.
    let predicted = try Harness.run(Harness.binary, ["bench"] + model + ["--steps", "2", "--warmup", "1", "--predict-ranks", "3", "--comm-profile", profile, "--json"])
    XCTAssertEqual(predicted.status, 0, predicted.output)
    let line = predicted.output.split(separator: "\n").last { $0.hasPrefix("{") }!
    let prediction = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
    XCTAssertEqual(prediction["ranks"] as? Int, 3)
    // At 0.1 Gb/s the gradients' all-reduce outlasts this tiny model's compute: communication is
    // most of the step.
    XCTAssertLessThan(prediction["efficiency"] as! Double, 0.5, predicted.output)
    XCTAssertNotEqual(prediction["bottleneck"] as? String, "compute", predicted.output)
  }
}

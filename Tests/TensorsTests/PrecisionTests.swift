// bfloat16 rounding against a reference computed in Double, and the emulated bf16 GEMM against
// the fp32 GEMM of operands rounded beforehand.
import Support
import Tensors
import XCTest

final class PrecisionTests: XCTestCase {
  /// The nearest bfloat16 to x by comparing the two neighbours in Double (ties to the even
  /// significand), as an independent reference for `BFloat16.rounded`.
  func reference(_ x: Float) -> Float {
    let bits = x.bitPattern
    let below = Float(bitPattern: bits & 0xFFFF_0000)  // towards zero
    let above = Float(bitPattern: (bits & 0xFFFF_0000) &+ 0x1_0000)  // away from zero (may be infinite)
    let dBelow = abs(Double(x) - Double(below))
    let dAbove = above.isInfinite ? Double.infinity : abs(Double(above) - Double(x))
    if dBelow < dAbove { return below }
    if dAbove < dBelow { return above }
    // A tie: the one whose last kept significand bit is 0.
    return (below.bitPattern >> 16) & 1 == 0 ? below : above
  }

  func testRoundingMatchesTheDoubleReference() {
    var rng = SplitMix64(seed: 5)
    var checked = 0
    for _ in 0..<200_000 {
      let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
      guard x.isFinite else { continue }
      // Just below the largest float the away neighbour is infinite, and the tie rule reaches it:
      // checked by name below.
      guard abs(x) < Float(bitPattern: 0x7F7F_0000) else { continue }
      XCTAssertEqual(BFloat16.rounded(x).bitPattern, reference(x).bitPattern, "x = \(x) (\(String(x.bitPattern, radix: 16)))")
      checked += 1
    }
    // Random bit patterns are non-finite (exponent 255) or too large 1 time in 128 at most:
    // ~199,000 are checked.
    XCTAssertGreaterThan(checked, 150_000)
  }

  func testTiesInfinitiesNaNAndRange() {
    let u = Float(1) / 256  // 2^-8: half the spacing of bfloat16 at 1
    XCTAssertEqual(BFloat16.rounded(1 + u), 1, "a tie goes to the even neighbour, 1")
    XCTAssertEqual(BFloat16.rounded(1 + 3 * u), 1 + 4 * u, "a tie goes to the even neighbour, 1 + 2^-6")
    XCTAssertEqual(BFloat16.rounded(1 + u + u / 4096), 1 + 2 * u, "just past a tie goes up")
    XCTAssertEqual(BFloat16.rounded(-(1 + 3 * u)), -(1 + 4 * u))
    XCTAssertEqual(BFloat16.rounded(.infinity), .infinity)
    XCTAssertEqual(BFloat16.rounded(-.infinity), -.infinity)
    XCTAssertTrue(BFloat16.rounded(.nan).isNaN)
    XCTAssertEqual(BFloat16.rounded(-Float.nan).sign, .minus)
    XCTAssertEqual(BFloat16.rounded(.greatestFiniteMagnitude), .infinity, "beyond the largest bfloat16")
    XCTAssertEqual(BFloat16.rounded(Float(bitPattern: 0x0000_0001)), 0, "the smallest fp32 subnormal is below bfloat16's")
    XCTAssertEqual(BFloat16.rounded(Float(bitPattern: 0x0001_0000)).bitPattern, 0x0001_0000, "bfloat16's smallest subnormal stays")
    // Normal values: within the unit roundoff.
    var rng = SplitMix64(seed: 9)
    for _ in 0..<10_000 {
      let x = rng.normal() * 1000
      XCTAssertLessThanOrEqual(abs(BFloat16.rounded(x) - x), BFloat16.unitRoundoff * abs(x))
    }
  }

  func testEmulatedGEMMIsTheFP32GEMMOfRoundedOperands() {
    var rng = SplitMix64(seed: 3)
    for (m, n, k, ta, tb) in [(7, 5, 9, false, false), (33, 17, 64, true, false), (12, 40, 300, false, true), (64, 64, 64, true, true)] {
      // Row strides wider than the rows, to check that only the rows' values are read.
      let (rowsA, columnsA) = ta ? (k, m) : (m, k)
      let (rowsB, columnsB) = tb ? (n, k) : (k, n)
      let lda = columnsA + 3
      let ldb = columnsB + 2
      var a = (0..<(rowsA * lda)).map { _ in rng.normal() }
      var b = (0..<(rowsB * ldb)).map { _ in rng.normal() }
      var emulated = [Float](repeating: 0, count: m * n)
      var reference = [Float](repeating: 0, count: m * n)
      BLAS.sgemm(
        transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: &emulated, ldc: n, precision: .bf16Emulated)
      a = a.map(BFloat16.rounded)
      b = b.map(BFloat16.rounded)
      var packedA = [Float](repeating: 0, count: rowsA * columnsA)
      var packedB = [Float](repeating: 0, count: rowsB * columnsB)
      for r in 0..<rowsA { for c in 0..<columnsA { packedA[r * columnsA + c] = a[r * lda + c] } }
      for r in 0..<rowsB { for c in 0..<columnsB { packedB[r * columnsB + c] = b[r * ldb + c] } }
      BLAS.sgemm(
        transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: packedA, lda: columnsA, b: packedB, ldb: columnsB, c: &reference, ldc: n,
        precision: .fp32)
      XCTAssertEqual(emulated, reference, "m \(m) n \(n) k \(k) transposes \(ta) \(tb)")
      var plain = [Float](repeating: 0, count: m * n)
      BLAS.sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: packedA, lda: columnsA, b: packedB, ldb: columnsB, c: &plain, ldc: n)
      XCTAssertEqual(plain, reference, "the default precision is fp32")
    }
  }

  func testPrecisionNamesAndCPUFlags() {
    XCTAssertEqual(Precision(rawValue: "bf16-emulated"), .bf16Emulated)
    XCTAssertNil(Precision(rawValue: "fp16"))
    // Every x86-64 CPU this runs on has SSE2; the flags are read.
    XCTAssertTrue(CPU.flags.contains("sse2"), "\(CPU.flags.sorted().prefix(10))")
    XCTAssertEqual(CPU.hasAVX512BF16, CPU.flags.contains("avx512_bf16"))
  }
}

// Kernels: sgemm wrapper layouts, im2col/col2im adjointness, safetensors round trip and bad files.
import Foundation
import Support
import Tensors
import XCTest

final class TensorsTests: XCTestCase {
  func testSgemmTransposes() {
    // A is 2x3, B is 3x2; each transposed form must give the same product.
    let a: [Float] = [1, 2, 3, 4, 5, 6]
    let b: [Float] = [7, 8, 9, 10, 11, 12]
    let at: [Float] = [1, 4, 2, 5, 3, 6]
    let bt: [Float] = [7, 9, 11, 8, 10, 12]
    let expected: [Float] = [58, 64, 139, 154]
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
      var c = [Float](repeating: 0, count: 4)
      let left = ta ? at : a
      let right = tb ? bt : b
      BLAS.sgemm(transposeA: ta, transposeB: tb, m: 2, n: 2, k: 3, a: left, lda: ta ? 2 : 3, b: right, ldb: tb ? 3 : 2, c: &c, ldc: 2)
      XCTAssertEqual(c, expected, "transposeA \(ta) transposeB \(tb)")
    }
  }

  /// Large products take the parallel paths (split by rows, by columns, or by the reduction);
  /// each must equal the definition, with beta accumulation.
  func testParallelSgemmPathsMatchTheDefinition() {
    Parallel.workers = 2
    var rng = SplitMix64(seed: 3)
    // (m, n, k): rows split, columns split, reduction split.
    for (m, n, k) in [(300, 40, 400), (40, 300, 400), (24, 40, 6000)] {
      for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = (0..<(m * k)).map { _ in rng.normal() }
        let b = (0..<(k * n)).map { _ in rng.normal() }
        var c = (0..<(m * n)).map { _ in rng.normal() }
        let c0 = c
        BLAS.sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: ta ? m : k,
          b: b, ldb: tb ? k : n, beta: 1, c: &c, ldc: n)
        var worst = 0.0
        for i in 0..<m {
          for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
              let av = Double(ta ? a[p * m + i] : a[i * k + p])
              let bv = Double(tb ? b[j * k + p] : b[p * n + j])
              s += av * bv
            }
            worst = max(worst, abs(0.5 * s + Double(c0[i * n + j]) - Double(c[i * n + j])))
          }
        }
        // fp32 sums of k <= 6000 products of N(0, 1) values: each step rounds by up to 2^-24 of a
        // partial sum ~sqrt(k) in size, a random walk of ~2^-24 k / sqrt(6) ~ 1e-4, halved by
        // alpha; the largest of 12,000 outputs is ~4 times that, ~2e-4.
        XCTAssertLessThan(worst, 1e-3, "m \(m) n \(n) k \(k) transposeA \(ta) transposeB \(tb)")
      }
    }
  }

  /// <scatter(c), x> == <c, lower(x)> for every geometry: col2im is im2col's adjoint.
  func testIm2ColScatterAreAdjoint() {
    var rng = SplitMix64(seed: 1)
    for (k, s, p) in [(3, 1, 1), (3, 2, 1), (1, 2, 0), (7, 2, 3), (2, 2, 0)] {
      let g = ConvGeometry(batch: 2, height: 7, width: 5, channels: 3, kernel: k, stride: s, padding: p)
      let x = Tensor(shape: [2, 7, 5, 3])
      let c = Tensor(shape: [g.rows, g.columns])
      for i in 0..<x.count { x.data[i] = rng.normal() }
      for i in 0..<c.count { c.data[i] = rng.normal() }
      let lowered = Tensor(shape: [g.rows, g.columns])
      Im2Col.lower(x.data, g, into: lowered.data)
      let scattered = Tensor(shape: [2, 7, 5, 3])
      Im2Col.scatter(c.data, g, into: scattered.data)
      var left = 0.0
      var right = 0.0
      for i in 0..<x.count { left += Double(scattered.data[i]) * Double(x.data[i]) }
      for i in 0..<c.count { right += Double(c.data[i]) * Double(lowered.data[i]) }
      // scatter adds up to 49 patch values per pixel in fp32 (a few 2^-24 of values ~7), over
      // 210 pixels: ~1e-5 against sums ~10; a misplaced value moves them by ~1.
      XCTAssertEqual(left, right, accuracy: 1e-4 * max(1, abs(left)), "k\(k) s\(s) p\(p)")
    }
  }

  func testParallelCoversEveryIndexOnce() {
    Parallel.workers = 2
    var hits = [Int](repeating: 0, count: 1001)
    hits.withUnsafeMutableBufferPointer { h in
      let p = h.baseAddress!
      Parallel.forEach(1001) { range in for i in range { p[i] += 1 } }
    }
    XCTAssertEqual(hits, [Int](repeating: 1, count: 1001))
  }

  func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
  }

  func testSafeTensorsRoundTrip() throws {
    let path = temporaryPath("round.safetensors")
    let values: [Float] = [1, -2.5, 3e-8, .infinity]
    try SafeTensors.write(
      [("b.weight", .f32, [2, 2], SafeTensors.bytes(of: values)), ("a", .f32, [], SafeTensors.bytes(of: [7]))],
      metadata: ["format": "pt"], to: path)
    let file = try SafeTensors(contentsOf: path)
    XCTAssertEqual(file.names, ["a", "b.weight"])
    XCTAssertEqual(try file.floats("b.weight", shape: [2, 2]), values)
    XCTAssertEqual(try file.floats("a"), [7])
    XCTAssertEqual(file.metadata["format"], "pt")
    XCTAssertThrowsError(try file.floats("b.weight", shape: [4])) { XCTAssertTrue("\($0)".contains("shape")) }
    XCTAssertThrowsError(try file.floats("missing")) { XCTAssertTrue("\($0)".contains("missing")) }
    XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"))
  }

  func testSafeTensorsRejectsBadFiles() throws {
    let path = temporaryPath("good.safetensors")
    try SafeTensors.write([("t", .f32, [3], SafeTensors.bytes(of: [1, 2, 3]))], to: path)
    let good = try Data(contentsOf: URL(fileURLWithPath: path))
    func header(_ json: String, data: Int) -> Data {
      var out = Data()
      var length = UInt64(json.utf8.count).littleEndian
      withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
      out.append(contentsOf: Array(json.utf8))
      out.append(Data(count: data))
      return out
    }
    let cases: [(String, Data, String)] = [
      ("empty", Data(), "shorter"),
      ("truncated", good.prefix(good.count - 4), "truncated"),
      ("header longer than file", good.prefix(12), "exceeds"),
      ("not json", header("{nope", data: 0), "JSON"),
      ("lying offsets", header(#"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,400]}}"#, data: 12), "outside"),
      ("shape vs bytes", header(#"{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#, data: 12), "needs"),
      ("negative shape", header(#"{"t":{"dtype":"F32","shape":[-3],"data_offsets":[0,12]}}"#, data: 12), "shape"),
      ("unknown dtype", header(#"{"t":{"dtype":"Q7","shape":[3],"data_offsets":[0,12]}}"#, data: 12), "dtype"),
      ("missing fields", header(#"{"t":{"dtype":"F32"}}"#, data: 12), "lacks"),
    ]
    for (name, bytes, phrase) in cases {
      XCTAssertThrowsError(try SafeTensors(bytes: bytes, path: "case.safetensors"), name) { error in
        XCTAssertTrue("\(error)".contains(phrase), "\(name): \(error)")
        XCTAssertTrue("\(error)".contains("case.safetensors"), "\(name): \(error)")
      }
    }
  }
}

// The convolution kernels of Tensors tested directly, without the layers: Winograd's transforms
// against a direct 3x3 convolution and their gradients against the adjoint identity, the sgemm
// observer contract, and the tap plans' gather and scatter.
import Foundation
import Support
import Tensors
import XCTest

final class KernelTests: XCTestCase {
  func random(_ count: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in rng.normal() }
  }

  func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

  /// A 3x3, stride-1, padding-1 convolution of NHWC x with OHWI weights, by its definition.
  func direct(_ x: [Float], n: Int, h: Int, w: Int, c: Int, weights: [Float], o: Int) -> [Float] {
    var y = [Float](repeating: 0, count: n * h * w * o)
    for image in 0..<n {
      for oy in 0..<h {
        for ox in 0..<w {
          for out in 0..<o {
            var sum: Float = 0
            for ky in 0..<3 {
              for kx in 0..<3 {
                let (iy, ix) = (oy - 1 + ky, ox - 1 + kx)
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                for ch in 0..<c { sum += x[((image * h + iy) * w + ix) * c + ch] * weights[((out * 3 + ky) * 3 + kx) * c + ch] }
              }
            }
            y[((image * h + oy) * w + ox) * o + out] = sum
          }
        }
      }
    }
    return y
  }

  /// Both transforms, with channel counts that take the general path (5, 6) and the written-out
  /// F(4x4) path (multiples of 8), on maps that do and do not divide into tiles.
  let shapes: [(n: Int, h: Int, w: Int, c: Int, o: Int)] = [(2, 5, 7, 5, 6), (1, 8, 8, 8, 16), (2, 3, 4, 16, 8), (1, 1, 1, 8, 8)]

  func testWinogradTransformsComputeTheConvolution() {
    Parallel.workers = 2
    for transform in [WinogradTransform.f2, .f4] {
      for s in shapes {
        let x = random(s.n * s.h * s.w * s.c, seed: 1)
        let weights = random(s.o * 9 * s.c, seed: 2)
        let (th, tw) = transform.tiles(height: s.h, width: s.w)
        let p = s.n * th * tw
        let t2 = transform.inputTile * transform.inputTile
        var v = [Float](repeating: 0, count: t2 * p * s.c)
        var u = [Float](repeating: 0, count: t2 * s.o * s.c)
        var m = [Float](repeating: 0, count: t2 * p * s.o)
        var y = [Float](repeating: 0, count: s.n * s.h * s.w * s.o)
        var scratch = [Float](repeating: 0, count: Parallel.workers * transform.scratchCount(channels: max(s.c, s.o)))
        transform.transformInput(x, batch: s.n, height: s.h, width: s.w, channels: s.c, into: &v, scratch: &scratch)
        transform.transformWeights(weights, outputChannels: s.o, inputChannels: s.c, into: &u, scratch: &scratch)
        // M[k] = V[k] · U[k]ᵀ at each of the t² positions.
        for k in 0..<t2 {
          v.withUnsafeBufferPointer { vp in
            u.withUnsafeBufferPointer { up in
              m.withUnsafeMutableBufferPointer { mp in
                BLAS.sgemm(
                  transposeB: true, m: p, n: s.o, k: s.c, a: vp.baseAddress! + k * p * s.c, lda: s.c,
                  b: up.baseAddress! + k * s.o * s.c, ldb: s.c, c: mp.baseAddress! + k * p * s.o, ldc: s.o)
              }
            }
          }
        }
        var reported = 0
        let lock = NSLock()
        transform.transformOutput(m, batch: s.n, height: s.h, width: s.w, channels: s.o, into: &y, scratch: &scratch) {
          _, _, ldc, rows, columns in
          XCTAssertEqual(ldc, s.o)
          lock.lock()
          reported += rows.count * columns.count
          lock.unlock()
        }
        let expected = direct(x, n: s.n, h: s.h, w: s.w, c: s.c, weights: weights, o: s.o)
        let scale = expected.map(abs).max()!
        let worst = zip(y, expected).map { abs($0 - $1) }.max()!
        // Both fp32, sums of at most 9 x 16 products: the direct one within ~2^-24 sqrt(144) of
        // its terms' size; Winograd's transforms round values up to ~10 times larger (F(4x4)).
        XCTAssertLessThan(worst / scale, 1e-4, "F(\(transform.outputTile)x\(transform.outputTile)) \(s)")
        XCTAssertEqual(reported, y.count, "every output value reported once, F(\(transform.outputTile)) \(s)")
      }
    }
  }

  /// Each gradient transform is the adjoint of its forward transform: ⟨T(a), b⟩ = ⟨a, Tᵀ(b)⟩.
  func testWinogradGradientTransformsAreAdjoint() {
    Parallel.workers = 2
    for transform in [WinogradTransform.f2, .f4] {
      for s in shapes {
        let (th, tw) = transform.tiles(height: s.h, width: s.w)
        let p = s.n * th * tw
        let t2 = transform.inputTile * transform.inputTile
        var scratch = [Float](repeating: 0, count: Parallel.workers * transform.scratchCount(channels: max(s.c, s.o)))
        let name = "F(\(transform.outputTile)x\(transform.outputTile)) \(s)"

        // Input: V = T(x); dx = Tᵀ(dV).
        let x = random(s.n * s.h * s.w * s.c, seed: 3)
        let dv = random(t2 * p * s.c, seed: 4)
        var v = [Float](repeating: 0, count: dv.count)
        var dx = [Float](repeating: 0, count: x.count)
        transform.transformInput(x, batch: s.n, height: s.h, width: s.w, channels: s.c, into: &v, scratch: &scratch)
        transform.transformInputGradient(dv, batch: s.n, height: s.h, width: s.w, channels: s.c, into: &dx, scratch: &scratch)
        // Each side is an fp32 transform (coefficients up to 8 in 1-D) then a Double dot product:
        // ~1e-6 of the terms' size, in sums of ~sqrt(count) that; a wrong coefficient or tile
        // offset moves a dot product by O(1) of itself. The same for the two below.
        XCTAssertEqual(dot(v, dv), dot(x, dx), accuracy: 1e-3 * max(1, abs(dot(v, dv))), "input, \(name)")

        // Output: y = A(M); dM = Aᵀ(dy).
        let mm = random(t2 * p * s.o, seed: 5)
        let dy = random(s.n * s.h * s.w * s.o, seed: 6)
        var y = [Float](repeating: 0, count: dy.count)
        var dm = [Float](repeating: 0, count: mm.count)
        transform.transformOutput(mm, batch: s.n, height: s.h, width: s.w, channels: s.o, into: &y, scratch: &scratch)
        transform.transformOutputGradient(dy, batch: s.n, height: s.h, width: s.w, channels: s.o, into: &dm, scratch: &scratch)
        XCTAssertEqual(dot(y, dy), dot(mm, dm), accuracy: 1e-3 * max(1, abs(dot(y, dy))), "output, \(name)")

        // Weights: U = G(W); dW += Gᵀ(dU), added to what is there.
        let weights = random(s.o * 9 * s.c, seed: 7)
        let du = random(t2 * s.o * s.c, seed: 8)
        var u = [Float](repeating: 0, count: du.count)
        let earlier = random(weights.count, seed: 9)
        var dw = earlier
        transform.transformWeights(weights, outputChannels: s.o, inputChannels: s.c, into: &u, scratch: &scratch)
        transform.accumulateWeightGradient(du, outputChannels: s.o, inputChannels: s.c, into: &dw, scratch: &scratch)
        let added = zip(dw, earlier).map { $0 - $1 }
        XCTAssertEqual(dot(u, du), dot(weights, added), accuracy: 1e-3 * max(1, abs(dot(u, du))), "weights, \(name)")
      }
    }
  }

  /// An observed sgemm reports every element of C exactly once, after it is final, with the
  /// worker that made it; and the product is the same as without an observer.
  func testSgemmObserverSeesEveryPartOnceWhenFinal() {
    Parallel.workers = 2
    for (m, n, k) in [(1000, 64, 300), (37, 300, 500), (5, 3, 2)] {
      let a = random(m * k, seed: 11)
      let b = random(k * n, seed: 12)
      var plain = [Float](repeating: 0, count: m * n)
      BLAS.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &plain, ldc: n)
      var observed = [Float](repeating: .nan, count: m * n)
      var seen = [Int](repeating: 0, count: m * n)
      var mismatches = 0
      var badWorkers = 0
      let lock = NSLock()
      observed.withUnsafeMutableBufferPointer { c in
        BLAS.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: c.baseAddress!, ldc: n) { worker, cp, ldc, rows, columns in
          lock.lock()
          defer { lock.unlock() }
          if !(0..<Parallel.workers).contains(worker) { badWorkers += 1 }
          for r in rows {
            for col in columns {
              seen[r * ldc + col] += 1
              if cp[r * ldc + col] != plain[r * n + col] { mismatches += 1 }
            }
          }
        }
      }
      XCTAssertEqual(seen.filter { $0 != 1 }.count, 0, "\(m)x\(n)x\(k): every element reported once")
      XCTAssertEqual(mismatches, 0, "\(m)x\(n)x\(k): reported values are final")
      XCTAssertEqual(badWorkers, 0)
      XCTAssertEqual(observed, plain)
    }
  }

  /// The tap plan of a small convolution: its gathered products, scattered back, give the
  /// convolution; scatterAdd is gather's adjoint.
  func testTapPlanComputesTheConvolution() {
    Parallel.workers = 2
    for (h, stride, padding) in [(2, 1, 1), (4, 2, 1), (3, 2, 0), (1, 1, 1)] {
      let g = ConvGeometry(batch: 2, height: h, width: h, channels: 3, kernel: 3, stride: stride, padding: padding)
      let plan = TapPlan(g)
      let (c, o) = (3, 4)
      let x = random(g.batch * h * h * c, seed: 13)
      let weights = random(o * 9 * c, seed: 14)
      let outPixels = g.outputHeight * g.outputWidth
      var y = [Float](repeating: 0, count: g.batch * outPixels * o)
      for tap in plan.taps {
        var gathered = [Float](repeating: 0, count: g.batch * tap.inputs.count * c)
        TapPlan.gather(x, pixels: tap.inputs, imagePixels: h * h, channels: c, batch: g.batch, into: &gathered)
        var product = [Float](repeating: 0, count: g.batch * tap.outputs.count * o)
        for row in 0..<(g.batch * tap.outputs.count) {
          for out in 0..<o {
            var sum: Float = 0
            for ch in 0..<c { sum += gathered[row * c + ch] * weights[out * 9 * c + tap.index * c + ch] }
            product[row * o + out] = sum
          }
        }
        TapPlan.scatterAdd(product, pixels: tap.outputs, imagePixels: outPixels, channels: o, batch: g.batch, into: &y)
      }
      // The definition, by im2col's lowering.
      var col = [Float](repeating: 0, count: g.rows * g.columns)
      Im2Col.lower(x, g, into: &col)
      var expected = [Float](repeating: 0, count: g.rows * o)
      for r in 0..<g.rows {
        for out in 0..<o {
          var sum: Float = 0
          for k in 0..<g.columns { sum += col[r * g.columns + k] * weights[out * g.columns + k] }
          expected[r * o + out] = sum
        }
      }
      // Two fp32 sums of the same <= 9 c products (N(0, 1) values) in other orders: a few 2^-24 of
      // sums below ~20, ~1e-6.
      for (a, b) in zip(y, expected) { XCTAssertEqual(a, b, accuracy: 1e-4, "h \(h) stride \(stride) padding \(padding)") }

      // ⟨gather(x), r⟩ = ⟨x, scatterAdd(r)⟩ for one tap.
      if let tap = plan.taps.first(where: { !$0.inputs.isEmpty }) {
        var gathered = [Float](repeating: 0, count: g.batch * tap.inputs.count * c)
        TapPlan.gather(x, pixels: tap.inputs, imagePixels: h * h, channels: c, batch: g.batch, into: &gathered)
        let r = random(gathered.count, seed: 15)
        var back = [Float](repeating: 0, count: x.count)
        TapPlan.scatterAdd(r, pixels: tap.inputs, imagePixels: h * h, channels: c, batch: g.batch, into: &back)
        // The same products summed in Double in another order (one tap adds each value once).
        XCTAssertEqual(dot(gathered, r), dot(x, back), accuracy: 1e-4)
      }
    }
  }
}

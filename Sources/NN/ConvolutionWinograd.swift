// Conv2d by Winograd's minimal filtering, F(m x m, 3x3) for 3x3 stride-1 padding-1 layers:
// U = G W Gᵀ per (Cout, Cin), V = Bᵀ d B per input tile, M = U ⊙ V summed over Cin (t² GEMMs),
// y = Aᵀ M A; backward runs the transposed transforms (Tensors/Winograd.swift).
import Tensors

extension Conv2d {
  /// F(4x4, 3x3), except on maps of at most 4 pixels a side with fewer than
  /// `f4MinimumTiles` F(4x4) tiles in the batch: there F(4x4)'s weight transforms (36 floats a
  /// weight against F(2x2)'s 16) cost more than its fewer multiplications save.
  public static func winogradTransform(batch: Int, height: Int, width: Int) -> WinogradTransform {
    let f4 = WinogradTransform.f4
    let (th, tw) = f4.tiles(height: height, width: width)
    return min(height, width) <= 4 && batch * th * tw < f4MinimumTiles ? .f2 : f4
  }

  /// Measured on ResNet-50's 256->256 layers on 4x4 maps: F(4x4) is faster from a batch of 64.
  public static let f4MinimumTiles = 64

  func winogradForward(
    _ x: FeatureMap, _ w: WinogradTransform, into y: UnsafeMutablePointer<Float>, _ observer: ProductObserver?
  ) {
    let (th, tw) = w.tiles(height: x.height, width: x.width)
    let p = x.batch * th * tw
    let xi = w.inputTile * w.inputTile
    let (cin, cout) = (inputChannels, outputChannels)
    let s = scratch.transform.pointer(count: w.scratchCount(channels: max(cin, cout)))
    let previous = transformedWeights.tensor?.data
    let u = transformedWeights.pointer(count: xi * cout * cin)
    if u != previous { cachedTransform = nil }
    let v = transformedInput.pointer(count: xi * p * cin)
    let m = scratch.transformedOutput.pointer(count: xi * p * cout)
    if weight.requiresGradient || cachedTransform != w.outputTile {
      w.transformWeights(weight.value, outputChannels: cout, inputChannels: cin, into: u, scratch: s)
      cachedTransform = weight.requiresGradient ? nil : w.outputTile
    }
    w.transformInput(x.data, batch: x.batch, height: x.height, width: x.width, channels: cin, into: v, scratch: s)
    w.batchedProducts { k in
      BLAS.sgemm(
        transposeB: true, m: p, n: cout, k: cin, a: v + k * p * cin, lda: cin,
        b: u + k * cout * cin, ldb: cin, c: m + k * p * cout, ldc: cout, parallel: false)
    }
    w.transformOutput(m, batch: x.batch, height: x.height, width: x.width, channels: cout, into: y, scratch: s, observer: observer)
  }

  func winogradBackward(
    _ dy: UnsafePointer<Float>, _ x: FeatureMap, _ w: WinogradTransform, addingTo target: UnsafeMutablePointer<Float>?,
    _ observer: ProductObserver?
  ) -> FeatureMap? {
    let (th, tw) = w.tiles(height: x.height, width: x.width)
    let p = x.batch * th * tw
    let xi = w.inputTile * w.inputTile
    let (cin, cout) = (inputChannels, outputChannels)
    let s = scratch.transform.pointer(count: w.scratchCount(channels: max(cin, cout)))
    let u = transformedWeights.tensor!.data
    let v = transformedInput.tensor!.data
    let dm = scratch.transformedOutput.pointer(count: xi * p * cout)
    Profiler.time(profileKey(x), part: 1) {
      w.transformOutputGradient(dy, batch: x.batch, height: x.height, width: x.width, channels: cout, into: dm, scratch: s)
      if weight.requiresGradient {
        let du = scratch.transformedWeightGradient.pointer(count: xi * cout * cin)
        w.batchedProducts { k in
          BLAS.sgemm(
            transposeA: true, m: cout, n: cin, k: p, a: dm + k * p * cout, lda: cout,
            b: v + k * p * cin, ldb: cin, c: du + k * cout * cin, ldc: cin, parallel: false)
        }
        w.accumulateWeightGradient(du, outputChannels: cout, inputChannels: cin, into: weight.gradient, scratch: s)
      }
    }
    guard computesInputGradient else { return nil }
    return Profiler.time(profileKey(x), part: 2) {
      // V is no longer needed: dV overwrites it.
      w.batchedProducts { k in
        BLAS.sgemm(
          m: p, n: cin, k: cout, a: dm + k * p * cout, lda: cout,
          b: u + k * cout * cin, ldb: cin, c: v + k * p * cin, ldc: cin, parallel: false)
      }
      let dx = target ?? gradientBuffer.pointer(count: x.count)
      w.transformInputGradient(
        v, batch: x.batch, height: x.height, width: x.width, channels: cin, into: dx, scratch: s,
        accumulate: target != nil, observer: observer)
      return x.with(data: dx)
    }
  }
}

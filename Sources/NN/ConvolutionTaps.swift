// Conv2d one kernel tap at a time, for outputs of at most `Conv2d.tapOutputPixels` pixels (the
// 2x2 and 1x1 maps of ResNet's last stage at small image sizes), where im2col would be mostly
// padding: each tap's input rows (`TapPlan`) times the tap's slice of W, added at its outputs.
import Tensors

extension Conv2d {
  /// y = sum over taps of (the tap's input rows) * W_tap^T, added at the tap's output pixels.
  func tapsForward(_ x: FeatureMap, _ plan: TapPlan, into y: UnsafeMutablePointer<Float>) {
    let g = plan.geometry
    let (cin, cout) = (inputChannels, outputChannels)
    let (inPixels, outPixels) = (g.height * g.width, g.outputHeight * g.outputWidth)
    let ldw = kernelSize * kernelSize * cin
    let rows = plan.maximumRows
    let gathered = scratch.gatheredInput.pointer(count: rows * cin)
    let product = scratch.tapProduct.pointer(count: rows * cout)
    var written = false
    for tap in plan.taps {
      let m = x.batch * tap.outputs.count
      var a = UnsafePointer(x.data)
      if !tap.isIdentity {
        TapPlan.gather(x.data, pixels: tap.inputs, imagePixels: inPixels, channels: cin, batch: x.batch, into: gathered)
        a = UnsafePointer(gathered)
      }
      if !tap.coversOutput && !written {
        Elementwise.zero(y, count: x.batch * outPixels * cout)
        written = true
      }
      BLAS.sgemm(
        transposeB: true, m: m, n: cout, k: cin, a: a, lda: cin, b: weight.value + tap.index * cin, ldb: ldw,
        beta: written && tap.coversOutput ? 1 : 0, c: tap.coversOutput ? y : product, ldc: cout)
      if !tap.coversOutput {
        TapPlan.scatterAdd(product, pixels: tap.outputs, imagePixels: outPixels, channels: cout, batch: x.batch, into: y)
      }
      written = true
    }
    if !written { Elementwise.zero(y, count: x.batch * outPixels * cout) }
  }

  /// Per tap: dW_tap += (output-gradient rows)^T * (input rows), straight into the tap's slice
  /// of the OHWI gradient; dx += (output-gradient rows) * W_tap at the tap's input pixels.
  func tapsBackward(
    _ dy: UnsafePointer<Float>, _ x: FeatureMap, _ plan: TapPlan, addingTo target: UnsafeMutablePointer<Float>?
  ) -> FeatureMap? {
    let g = plan.geometry
    let (cin, cout) = (inputChannels, outputChannels)
    let (inPixels, outPixels) = (g.height * g.width, g.outputHeight * g.outputWidth)
    let ldw = kernelSize * kernelSize * cin
    let rows = plan.maximumRows
    let gx = scratch.gatheredInput.pointer(count: rows * cin)
    let gdy = scratch.gatheredGradient.pointer(count: rows * cout)
    let product = scratch.tapProduct.pointer(count: rows * max(cin, cout))
    let dx: UnsafeMutablePointer<Float>? = computesInputGradient ? target ?? gradientBuffer.pointer(count: x.count) : nil
    // Everything is added to a target; without one, the first product writes dx.
    var dxWritten = target != nil
    for tap in plan.taps {
      let m = x.batch * tap.outputs.count
      var gradientRows = dy
      if !tap.coversOutput {
        TapPlan.gather(dy, pixels: tap.outputs, imagePixels: outPixels, channels: cout, batch: x.batch, into: gdy)
        gradientRows = UnsafePointer(gdy)
      }
      if weight.requiresGradient {
        Profiler.time(profileKey(x), part: 1) {
          var inputRows = UnsafePointer(x.data)
          if !tap.isIdentity {
            TapPlan.gather(x.data, pixels: tap.inputs, imagePixels: inPixels, channels: cin, batch: x.batch, into: gx)
            inputRows = UnsafePointer(gx)
          }
          BLAS.sgemm(
            transposeA: true, m: cout, n: cin, k: m, a: gradientRows, lda: cout, b: inputRows, ldb: cin,
            beta: 1, c: weight.gradient + tap.index * cin, ldc: ldw)
        }
      }
      guard let dx else { continue }
      Profiler.time(profileKey(x), part: 2) {
        // The identity tap's rows are dx's own; the others are added at their input pixels.
        let direct = tap.isIdentity
        if !direct && !dxWritten { Elementwise.zero(dx, count: x.count) }
        BLAS.sgemm(
          m: m, n: cin, k: cout, a: gradientRows, lda: cout, b: weight.value + tap.index * cin, ldb: ldw,
          beta: direct && dxWritten ? 1 : 0, c: direct ? dx : product, ldc: cin)
        if !direct {
          TapPlan.scatterAdd(product, pixels: tap.inputs, imagePixels: inPixels, channels: cin, batch: x.batch, into: dx)
        }
        dxWritten = true
      }
    }
    guard let dx else { return nil }
    if !dxWritten { Elementwise.zero(dx, count: x.count) }
    return x.with(data: dx)
  }
}

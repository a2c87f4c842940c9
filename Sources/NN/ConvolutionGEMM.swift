// Conv2d by im2col and GEMM: the input lowered to rows of kernel-sized patches (none for a 1x1
// stride-1 layer, whose input rows are the patches), then
//   forward  y  = col · Wᵀ            [N*OH*OW, Cout]
//   backward dW += dyᵀ · col,  dcol = dy · W,  dx = col2im(dcol)
// and the 1x1 backward that takes dy part by part from the BatchNorm above.
import Tensors

extension Conv2d {
  /// The lowered input of the last forward: the input itself for a 1x1 stride-1 layer.
  private func loweredInput(_ x: FeatureMap, _ g: ConvGeometry) -> UnsafePointer<Float> {
    g.isPointwise ? UnsafePointer(x.data) : UnsafePointer(lowered.tensor!.data)
  }

  func gemmForward(_ x: FeatureMap, _ g: ConvGeometry, into y: UnsafeMutablePointer<Float>, _ observer: ProductObserver?) {
    if !g.isPointwise { Im2Col.lower(x.data, g, into: lowered.pointer(count: g.rows * g.columns)) }
    BLAS.sgemm(
      transposeB: true, m: g.rows, n: outputChannels, k: g.columns,
      a: loweredInput(x, g), lda: g.columns, b: weight.value, ldb: g.columns, c: y, ldc: outputChannels, observer: observer)
  }

  /// dW += dyᵀ · col.
  func gemmWeightGradient(_ dy: UnsafePointer<Float>, _ g: ConvGeometry, _ x: FeatureMap) {
    BLAS.sgemm(
      transposeA: true, m: outputChannels, n: g.columns, k: g.rows,
      a: dy, lda: outputChannels, b: loweredInput(x, g), ldb: g.columns, beta: 1, c: weight.gradient, ldc: g.columns)
  }

  /// dx = col2im(dy · W), added to `target` when given. A 1x1 stride-1 layer's product is dx
  /// itself (reported to `observer` as the GEMM makes it); the others go through dcol.
  func gemmInputGradient(
    _ dy: UnsafePointer<Float>, _ x: FeatureMap, _ g: ConvGeometry, addingTo target: UnsafeMutablePointer<Float>?,
    observer: ProductObserver?
  ) -> FeatureMap {
    let dx = target ?? gradientBuffer.pointer(count: x.count)
    let direct = g.isPointwise
    let dcol = direct ? dx : scratch.loweredGradient.pointer(count: g.rows * g.columns)
    BLAS.sgemm(
      m: g.rows, n: g.columns, k: outputChannels, a: dy, lda: outputChannels, b: weight.value, ldb: g.columns,
      beta: direct && target != nil ? 1 : 0, c: dcol, ldc: g.columns, observer: direct ? observer : nil)
    if !direct { Im2Col.scatter(dcol, g, into: dx, accumulate: target != nil) }
    return x.with(data: dx)
  }

  /// A 1x1 stride-1 layer's backward with dy made part by part by `produce`: each worker makes
  /// about 1 MB of dy rows at a time into a buffer of its own, and the products read it from
  /// cache: its rows of dx (added to `target` when given, and reported to `observer`), and its
  /// share of dW (summed per worker, then added). dy is never written whole nor read back.
  func pointwiseBackward(
    producedBy produce: GradientProducer, _ x: FeatureMap, addingTo target: UnsafeMutablePointer<Float>?,
    observer: ProductObserver?
  ) -> FeatureMap? {
    let (cin, cout, rows) = (inputChannels, outputChannels, x.pixels)
    let trains = weight.requiresGradient
    let dx: UnsafeMutablePointer<Float>? = computesInputGradient ? target ?? gradientBuffer.pointer(count: x.count) : nil
    let partRows = max(64, (1 << 18) / max(cin, cout))
    let workers = Parallel.chunkCount(rows, grain: partRows)
    let parts = scratch.gatheredGradient.pointer(count: workers * partRows * cout)
    summingWeightGradient(workers: trains ? workers : 1) { sum in
      Parallel.forEachChunk(rows, grain: partRows) { worker, range in
        let dy = parts + worker * partRows * cout
        var start = range.lowerBound
        while start < range.upperBound {
          let part = start..<min(start + partRows, range.upperBound)
          produce(part, dy)
          if trains {
            BLAS.sgemm(
              transposeA: true, m: cout, n: cin, k: part.count, a: dy, lda: cout, b: x.data + part.lowerBound * cin,
              ldb: cin, beta: 1, c: sum(worker), ldc: cin, parallel: false)
          }
          if let dx {
            BLAS.sgemm(
              m: part.count, n: cin, k: cout, a: dy, lda: cout, b: weight.value, ldb: cin,
              beta: target != nil ? 1 : 0, c: dx + part.lowerBound * cin, ldc: cin, parallel: false)
            observer?(worker, dx, cin, part, 0..<cin)
          }
          start = part.upperBound
        }
      }
    }
    return dx.map { x.with(data: $0) }
  }
}

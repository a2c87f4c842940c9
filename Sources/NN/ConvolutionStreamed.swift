// Conv2d by im2col and GEMM with the input lowered part by part, never whole: for a layer that
// needs no input gradient and has few output channels (the stem, 7x7x3 -> 64), whose lowered
// matrix would be 49 times the image. The products are GEMM's (ConvolutionGEMM.swift), made a
// part at a time: y's rows in forward, dW's sum in backward.
import Tensors

extension Conv2d {
  /// Output lines lowered at a time when the lowered matrix is never made whole, or nil. A
  /// layer with no input gradient and few output channels (the stem: 7x7x3 -> 64) lowers
  /// about 1 MB of rows at a time, just before the GEMM packs them, once in forward and again
  /// for the weight gradient, instead of writing the whole lowered matrix (49 times the image)
  /// and reading it back twice.
  func streamedLines(_ g: ConvGeometry) -> Int? {
    guard !g.isPointwise, !computesInputGradient else { return nil }
    let lines = max(1, (1 << 18) / (g.outputWidth * g.columns))
    guard outputChannels * 8 <= lines * g.outputWidth, g.batch * g.outputHeight >= 2 * lines else { return nil }
    return lines
  }

  /// Lowers the input part by part, `lines` output lines at a time, each worker into its own
  /// buffer, and calls `body(worker, col, rows)` with each part's lowered rows.
  private func forEachLoweredPart(
    _ x: FeatureMap, _ g: ConvGeometry, lines: Int,
    _ body: (_ worker: Int, _ col: UnsafePointer<Float>, _ rows: Range<Int>) -> Void
  ) {
    let partSize = lines * g.outputWidth * g.columns
    let buffers = lowered.pointer(count: Parallel.workers * partSize)
    Parallel.forEachChunk(g.batch * g.outputHeight, grain: lines) { worker, range in
      let col = buffers + worker * partSize
      var start = range.lowerBound
      while start < range.upperBound {
        let part = start..<min(start + lines, range.upperBound)
        Im2Col.lower(x.data, g, lines: part, into: col)
        body(worker, col, (part.lowerBound * g.outputWidth)..<(part.upperBound * g.outputWidth))
        start = part.upperBound
      }
    }
  }

  func streamedForward(
    _ x: FeatureMap, _ g: ConvGeometry, lines: Int, into y: UnsafeMutablePointer<Float>, _ observer: ProductObserver?
  ) {
    let (k, cout) = (g.columns, outputChannels)
    forEachLoweredPart(x, g, lines: lines) { worker, col, rows in
      BLAS.sgemm(
        transposeB: true, m: rows.count, n: cout, k: k, a: col, lda: k, b: weight.value, ldb: k,
        c: y + rows.lowerBound * cout, ldc: cout, parallel: false)
      observer?(worker, y, cout, rows, 0..<cout)
    }
  }

  /// dW += dy^T * col, the rows of col lowered again part by part; each worker sums its own
  /// parts, and the workers' sums are added at the end. dy's rows are made for each part
  /// beside them when they come from a producer.
  func streamedWeightGradient(_ dy: OutputGradient, _ x: FeatureMap, _ g: ConvGeometry, lines: Int) {
    let (k, cout) = (g.columns, outputChannels)
    let chunks = Parallel.chunkCount(g.batch * g.outputHeight, grain: lines)
    let partRows = lines * g.outputWidth
    let made: UnsafeMutablePointer<Float>? = if case .parts = dy { scratch.gatheredGradient.pointer(count: chunks * partRows * cout) } else { nil }
    summingWeightGradient(workers: chunks) { sum in
      forEachLoweredPart(x, g, lines: lines) { worker, col, rows in
        let rowsOfDy: UnsafePointer<Float>
        switch dy {
        case .whole(let matrix):
          rowsOfDy = matrix + rows.lowerBound * cout
        case .parts(let produce):
          let buffer = made! + worker * partRows * cout
          produce(rows, buffer)
          rowsOfDy = UnsafePointer(buffer)
        }
        BLAS.sgemm(
          transposeA: true, m: cout, n: k, k: rows.count, a: rowsOfDy, lda: cout,
          b: col, ldb: k, beta: 1, c: sum(worker), ldc: k, parallel: false)
      }
    }
  }
}

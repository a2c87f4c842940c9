// The math of each layer family, stated plainly: the definitions that the fused, parallel and
// method-choosing paths of Conv2d, BatchNorm2d and the residual unit must agree with. Small,
// single-threaded, allocating, and written to be read; the tests compare the fast paths
// against these (and these against PyTorch's fixtures through the model).
import Tensors

public enum Reference {
  // MARK: Convolution

  /// y = col(x) · Wᵀ: x [N, H, W, Cin] (NHWC), W [Cout, K, K, Cin] (OHWI), y [N, OH, OW, Cout],
  /// with col(x) the im2col lowering (one row of K*K*Cin values per output pixel, zeros where
  /// the kernel meets padding).
  public static func convolution(_ x: [Float], _ g: ConvGeometry, weight: [Float], outputChannels: Int) -> [Float] {
    let col = lowered(x, g)
    var y = [Float](repeating: 0, count: g.rows * outputChannels)
    for row in 0..<g.rows {
      for o in 0..<outputChannels {
        var sum: Float = 0
        for c in 0..<g.columns { sum += col[row * g.columns + c] * weight[o * g.columns + c] }
        y[row * outputChannels + o] = sum
      }
    }
    return y
  }

  /// The convolution's gradients from dy [N, OH, OW, Cout]: dW = dyᵀ · col(x), and dx = the
  /// transpose of the lowering applied to dcol = dy · W (each patch value added back where it
  /// was read).
  public static func convolutionBackward(
    _ dy: [Float], _ x: [Float], _ g: ConvGeometry, weight: [Float], outputChannels: Int
  ) -> (dx: [Float], dw: [Float]) {
    let col = lowered(x, g)
    var dw = [Float](repeating: 0, count: outputChannels * g.columns)
    var dcol = [Float](repeating: 0, count: g.rows * g.columns)
    for row in 0..<g.rows {
      for o in 0..<outputChannels {
        let d = dy[row * outputChannels + o]
        for c in 0..<g.columns {
          dw[o * g.columns + c] += d * col[row * g.columns + c]
          dcol[row * g.columns + c] += d * weight[o * g.columns + c]
        }
      }
    }
    var dx = [Float](repeating: 0, count: x.count)
    forEachPatchValue(g) { row, column, source in
      if let source { dx[source] += dcol[row * g.columns + column] }
    }
    return (dx, dw)
  }

  /// im2col: row r (output pixel n, oy, ox) holds x[n, oy*s - p + ky, ox*s - p + kx, c] at
  /// column (ky*K + kx)*Cin + c, or 0 outside the image.
  public static func lowered(_ x: [Float], _ g: ConvGeometry) -> [Float] {
    var col = [Float](repeating: 0, count: g.rows * g.columns)
    forEachPatchValue(g) { row, column, source in
      if let source { col[row * g.columns + column] = x[source] }
    }
    return col
  }

  /// Calls `body(row, column, index in x or nil for padding)` for every entry of col(x).
  private static func forEachPatchValue(_ g: ConvGeometry, _ body: (Int, Int, Int?) -> Void) {
    for n in 0..<g.batch {
      for oy in 0..<g.outputHeight {
        for ox in 0..<g.outputWidth {
          let row = (n * g.outputHeight + oy) * g.outputWidth + ox
          for ky in 0..<g.kernel {
            for kx in 0..<g.kernel {
              let iy = oy * g.stride - g.padding + ky
              let ix = ox * g.stride - g.padding + kx
              let inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width
              for c in 0..<g.channels {
                let column = (ky * g.kernel + kx) * g.channels + c
                body(row, column, inside ? ((n * g.height + iy) * g.width + ix) * g.channels + c : nil)
              }
            }
          }
        }
      }
    }
  }

  // MARK: BatchNorm

  /// Training-mode BatchNorm over x [rows, C]: per channel the batch mean μ and biased variance
  /// σ², x̂ = (x - μ) / √(σ² + ε), y = γ x̂ + β. Returns y, μ and the unbiased variance (what the
  /// running statistics move towards).
  public static func batchNorm(
    _ x: [Float], channels: Int, gamma: [Float], beta: [Float], epsilon: Double = 1e-5
  ) -> (y: [Float], mean: [Double], unbiasedVariance: [Double]) {
    let rows = x.count / channels
    let (mean, variance) = statistics(x, channels: channels)
    var y = [Float](repeating: 0, count: x.count)
    for r in 0..<rows {
      for c in 0..<channels {
        let normalized = (Double(x[r * channels + c]) - mean[c]) / (variance[c] + epsilon).squareRoot()
        y[r * channels + c] = Float(Double(gamma[c]) * normalized + Double(beta[c]))
      }
    }
    let unbiased = variance.map { $0 * Double(rows) / Double(max(rows - 1, 1)) }
    return (y, mean, unbiased)
  }

  /// Training-mode BatchNorm's gradients from dy: dβ = Σ dy, dγ = Σ dy x̂, and
  /// dx = γ / √(σ² + ε) · (dy - mean(dy) - x̂ mean(dy x̂)) (the batch statistics depend on x).
  public static func batchNormBackward(
    _ dy: [Float], _ x: [Float], channels: Int, gamma: [Float], epsilon: Double = 1e-5
  ) -> (dx: [Float], dgamma: [Float], dbeta: [Float]) {
    let rows = x.count / channels
    let (mean, variance) = statistics(x, channels: channels)
    var sumDy = [Double](repeating: 0, count: channels)
    var sumDyXhat = [Double](repeating: 0, count: channels)
    func normalized(_ r: Int, _ c: Int) -> Double { (Double(x[r * channels + c]) - mean[c]) / (variance[c] + epsilon).squareRoot() }
    for r in 0..<rows {
      for c in 0..<channels {
        sumDy[c] += Double(dy[r * channels + c])
        sumDyXhat[c] += Double(dy[r * channels + c]) * normalized(r, c)
      }
    }
    var dx = [Float](repeating: 0, count: x.count)
    for r in 0..<rows {
      for c in 0..<channels {
        let scale = Double(gamma[c]) / (variance[c] + epsilon).squareRoot()
        let centred = Double(dy[r * channels + c]) - sumDy[c] / Double(rows) - normalized(r, c) * sumDyXhat[c] / Double(rows)
        dx[r * channels + c] = Float(scale * centred)
      }
    }
    return (dx, sumDyXhat.map(Float.init), sumDy.map(Float.init))
  }

  /// Per-channel mean and biased variance of x [rows, C], in Double.
  public static func statistics(_ x: [Float], channels: Int) -> (mean: [Double], variance: [Double]) {
    let rows = x.count / channels
    var mean = [Double](repeating: 0, count: channels)
    var variance = [Double](repeating: 0, count: channels)
    for r in 0..<rows { for c in 0..<channels { mean[c] += Double(x[r * channels + c]) } }
    for c in 0..<channels { mean[c] /= Double(rows) }
    for r in 0..<rows {
      for c in 0..<channels {
        let d = Double(x[r * channels + c]) - mean[c]
        variance[c] += d * d
      }
    }
    for c in 0..<channels { variance[c] /= Double(rows) }
    return (mean, variance)
  }

  // MARK: The residual join

  /// y = max(0, main + shortcut): the end of a residual unit, main being its last BatchNorm's
  /// output and shortcut the unit's input (or its downsampling projection).
  public static func residualJoin(main: [Float], shortcut: [Float]) -> [Float] {
    zip(main, shortcut).map { max(0, $0 + $1) }
  }

  /// The join's gradient reaches both branches alike: d = dy where y > 0, else 0.
  public static func residualJoinBackward(_ dy: [Float], output y: [Float]) -> (main: [Float], shortcut: [Float]) {
    let d = zip(dy, y).map { $1 > 0 ? $0 : 0 }
    return (d, d)
  }
}

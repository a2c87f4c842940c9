// im2col and col2im for NHWC feature maps: the lowering of a convolution to one GEMM.

/// The shape of a 2-D convolution over an NHWC batch (letters as in the rest of the code:
/// N batch, H/W input size, C input channels, K kernel size, S stride, P padding).
public struct ConvGeometry: Equatable, Sendable {
  public var batch: Int
  public var height: Int
  public var width: Int
  public var channels: Int
  public var kernel: Int
  public var stride: Int
  public var padding: Int

  public init(batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int, padding: Int) {
    self.batch = batch
    self.height = height
    self.width = width
    self.channels = channels
    self.kernel = kernel
    self.stride = stride
    self.padding = padding
  }

  public var outputHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
  public var outputWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
  /// Rows of the lowered matrix: one per output pixel.
  public var rows: Int { batch * outputHeight * outputWidth }
  /// Columns of the lowered matrix: one per (kh, kw, c), matching OHWI weights.
  public var columns: Int { kernel * kernel * channels }
  /// True when the input itself is the lowered matrix (1x1, stride 1, no padding).
  public var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
}

public enum Im2Col {
  /// The taps kw in `valid` of a kernel row starting at input column `x0` fall inside the image;
  /// they are contiguous in NHWC, so each kernel row is one copy.
  @inline(__always)
  static func validTaps(x0: Int, kernel k: Int, width w: Int) -> Range<Int> {
    let lo = max(0, -x0)
    let hi = min(k, w - x0)
    return lo < hi ? lo..<hi : 0..<0
  }

  /// col[N*OH*OW, K*K*C] from x[N, H, W, C]; out-of-image taps are zero.
  public static func lower(
    _ x: UnsafePointer<Float>, _ g: ConvGeometry, into col: UnsafeMutablePointer<Float>
  ) {
    Parallel.forEach(g.batch * g.outputHeight, grain: 1) { range in
      lower(x, g, lines: range, into: col + range.lowerBound * g.outputWidth * g.columns)
    }
  }

  /// The rows of col for output lines (image, output row) `lines`, from `col` on (serial).
  public static func lower(
    _ x: UnsafePointer<Float>, _ g: ConvGeometry, lines: Range<Int>, into col: UnsafeMutablePointer<Float>
  ) {
    let oh = g.outputHeight
    let ow = g.outputWidth
    let c = g.channels
    let k = g.kernel
    let rowLength = g.columns
    for nh in lines {
      let n = nh / oh
      let y = nh % oh
      let image = x + n * g.height * g.width * c
      for xo in 0..<ow {
        let dst = col + ((nh - lines.lowerBound) * ow + xo) * rowLength
        let x0 = xo * g.stride - g.padding
        let taps = validTaps(x0: x0, kernel: k, width: g.width)
        for kh in 0..<k {
          let row = dst + kh * k * c
          let iy = y * g.stride - g.padding + kh
          if iy < 0 || iy >= g.height || taps.isEmpty {
            row.update(repeating: 0, count: k * c)
            continue
          }
          if taps.lowerBound > 0 { row.update(repeating: 0, count: taps.lowerBound * c) }
          (row + taps.lowerBound * c).update(
            from: image + (iy * g.width + x0 + taps.lowerBound) * c, count: taps.count * c)
          if taps.upperBound < k {
            (row + taps.upperBound * c).update(repeating: 0, count: (k - taps.upperBound) * c)
          }
        }
      }
    }
  }

  /// dx[N, H, W, C] = the sum of every col entry back at its input position (overwrites dx,
  /// or adds to it with `accumulate`).
  public static func scatter(
    _ col: UnsafePointer<Float>, _ g: ConvGeometry, into dx: UnsafeMutablePointer<Float>,
    accumulate: Bool = false
  ) {
    let oh = g.outputHeight
    let ow = g.outputWidth
    let c = g.channels
    let k = g.kernel
    let rowLength = g.columns
    let imageSize = g.height * g.width * c
    Parallel.forEach(g.batch) { range in
      for n in range {
        let image = dx + n * imageSize
        if !accumulate { image.update(repeating: 0, count: imageSize) }
        for y in 0..<oh {
          for xo in 0..<ow {
            let src = col + ((n * oh + y) * ow + xo) * rowLength
            let x0 = xo * g.stride - g.padding
            let taps = validTaps(x0: x0, kernel: k, width: g.width)
            if taps.isEmpty { continue }
            for kh in 0..<k {
              let iy = y * g.stride - g.padding + kh
              if iy < 0 || iy >= g.height { continue }
              let from = src + (kh * k + taps.lowerBound) * c
              let to = image + (iy * g.width + x0 + taps.lowerBound) * c
              for i in 0..<(taps.count * c) { to[i] += from[i] }
            }
          }
        }
      }
    }
  }
}

// im2col and col2im for NHWC feature maps: the lowering of a convolution to one GEMM.

/// The shape of a 2-D convolution over an NHWC batch (letters as in the rest of the code:
/// N batch, H/W input size, C input channels, K kernel size, S stride, P padding).
public struct ConvGeometry: Equatable {
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
  /// col[N*OH*OW, K*K*C] from x[N, H, W, C]; out-of-image taps are zero.
  public static func lower(
    _ x: UnsafePointer<Float>, _ g: ConvGeometry, into col: UnsafeMutablePointer<Float>
  ) {
    let oh = g.outputHeight
    let ow = g.outputWidth
    let c = g.channels
    let k = g.kernel
    let rowLength = g.columns
    Parallel.forEach(g.batch * oh, grain: 1) { range in
      for nh in range {
        let n = nh / oh
        let y = nh % oh
        let image = x + n * g.height * g.width * c
        for xo in 0..<ow {
          var dst = col + (nh * ow + xo) * rowLength
          for kh in 0..<k {
            let iy = y * g.stride - g.padding + kh
            if iy < 0 || iy >= g.height {
              dst.update(repeating: 0, count: k * c)
              dst += k * c
              continue
            }
            let rowBase = image + iy * g.width * c
            for kw in 0..<k {
              let ix = xo * g.stride - g.padding + kw
              if ix < 0 || ix >= g.width {
                dst.update(repeating: 0, count: c)
              } else {
                dst.update(from: rowBase + ix * c, count: c)
              }
              dst += c
            }
          }
        }
      }
    }
  }

  /// dx[N, H, W, C] = the sum of every col entry back at its input position (overwrites dx).
  public static func scatter(
    _ col: UnsafePointer<Float>, _ g: ConvGeometry, into dx: UnsafeMutablePointer<Float>
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
        image.update(repeating: 0, count: imageSize)
        for y in 0..<oh {
          for xo in 0..<ow {
            var src = col + ((n * oh + y) * ow + xo) * rowLength
            for kh in 0..<k {
              let iy = y * g.stride - g.padding + kh
              if iy < 0 || iy >= g.height {
                src += k * c
                continue
              }
              for kw in 0..<k {
                let ix = xo * g.stride - g.padding + kw
                if ix >= 0 && ix < g.width {
                  let dst = image + (iy * g.width + ix) * c
                  for ch in 0..<c { dst[ch] += src[ch] }
                }
                src += c
              }
            }
          }
        }
      }
    }
  }
}

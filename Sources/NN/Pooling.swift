// MaxPool2d (3x3, stride 2, padding 1 by default) and global average pooling, NHWC.
import Tensors

public final class MaxPool2d {
  public let kernelSize: Int
  public let stride: Int
  public let padding: Int
  public var computesInputGradient = true

  private var input: FeatureMap?
  private var outputShape: FeatureMap?
  private var output = Workspace()
  private var inputGradient = Workspace()
  /// For each output element, the flat index of its maximum inside its input image.
  private var argmax = [Int32]()

  public init(kernelSize: Int = 3, stride: Int = 2, padding: Int = 1) {
    self.kernelSize = kernelSize
    self.stride = stride
    self.padding = padding
  }

  public func outputSize(height: Int, width: Int) -> (Int, Int) {
    ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
  }

  // x: [N, H, W, C] -> y: [N, OH, OW, C]
  public func forward(_ x: FeatureMap) -> FeatureMap {
    let (oh, ow) = outputSize(height: x.height, width: x.width)
    let c = x.channels
    let y = output.pointer(count: x.batch * oh * ow * c)
    if argmax.count != x.batch * oh * ow * c {
      argmax = [Int32](repeating: 0, count: x.batch * oh * ow * c)
    }
    let (k, s, p, h, w) = (kernelSize, stride, padding, x.height, x.width)
    argmax.withUnsafeMutableBufferPointer { arg in
      let am = arg.baseAddress!
      Parallel.forEach(x.batch * oh) { range in
        for nh in range {
          let n = nh / oh
          let oy = nh % oh
          let image = x.data + n * h * w * c
          for ox in 0..<ow {
            let out = y + (nh * ow + ox) * c
            let idx = am + (nh * ow + ox) * c
            for ch in 0..<c {
              out[ch] = -.infinity
              idx[ch] = 0
            }
            for ky in 0..<k {
              let iy = oy * s - p + ky
              if iy < 0 || iy >= h { continue }
              for kx in 0..<k {
                let ix = ox * s - p + kx
                if ix < 0 || ix >= w { continue }
                let base = (iy * w + ix) * c
                let src = image + base
                for ch in 0..<c where src[ch] > out[ch] {
                  out[ch] = src[ch]
                  idx[ch] = Int32(base + ch)
                }
              }
            }
          }
        }
      }
    }
    input = x
    let shape = FeatureMap(data: y, batch: x.batch, height: oh, width: ow, channels: c)
    outputShape = shape
    return shape
  }

  /// With `observer`, each image's input gradient is reported once made (see `ProductObserver`).
  public func backward(_ dy: UnsafePointer<Float>, observer: ProductObserver? = nil) -> FeatureMap? {
    guard let x = input, let yShape = outputShape else { preconditionFailure("backward before forward") }
    guard computesInputGradient else { return nil }
    let dx = inputGradient.pointer(count: x.count)
    let pixels = x.height * x.width
    let imageIn = pixels * x.channels
    let imageOut = yShape.height * yShape.width * yShape.channels
    argmax.withUnsafeBufferPointer { arg in
      let am = arg.baseAddress!
      Parallel.forEachChunk(x.batch) { worker, range in
        for n in range {
          let dimage = dx + n * imageIn
          dimage.update(repeating: 0, count: imageIn)
          for i in 0..<imageOut {
            dimage[Int(am[n * imageOut + i])] += dy[n * imageOut + i]
          }
          observer?(worker, dx, x.channels, (n * pixels)..<((n + 1) * pixels), 0..<x.channels)
        }
      }
    }
    return x.with(data: dx)
  }
}

public final class GlobalAveragePool {
  public var computesInputGradient = true
  private var input: FeatureMap?
  private var output = Workspace()
  private var inputGradient = Workspace()

  public init() {}

  // x: [N, H, W, C] -> y: [N, C]
  public func forward(_ x: FeatureMap) -> FeatureMap {
    input = x
    let c = x.channels
    let hw = x.height * x.width
    let y = output.pointer(count: x.batch * c)
    let scale = 1 / Float(hw)
    Parallel.forEach(x.batch) { range in
      for n in range {
        let out = y + n * c
        out.update(repeating: 0, count: c)
        let image = x.data + n * hw * c
        for p in 0..<hw {
          let src = image + p * c
          for ch in 0..<c { out[ch] += src[ch] }
        }
        for ch in 0..<c { out[ch] *= scale }
      }
    }
    return FeatureMap(data: y, batch: x.batch, height: 1, width: 1, channels: c)
  }

  public func backward(_ dy: UnsafePointer<Float>) -> FeatureMap? {
    guard let x = input else { preconditionFailure("backward before forward") }
    guard computesInputGradient else { return nil }
    let c = x.channels
    let hw = x.height * x.width
    let dx = inputGradient.pointer(count: x.count)
    let scale = 1 / Float(hw)
    Parallel.forEach(x.batch) { range in
      for n in range {
        let g = dy + n * c
        let image = dx + n * hw * c
        for p in 0..<hw {
          let dst = image + p * c
          for ch in 0..<c { dst[ch] = g[ch] * scale }
        }
      }
    }
    return x.with(data: dx)
  }
}

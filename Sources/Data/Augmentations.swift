// SimCLR's augmentations (Chen et al. 2020) and a light fine-tuning one, on RGB floats in [0, 1]
// laid out HWC; the colour operations follow torchvision's functional definitions on tensors.
import Foundation
import Support
import Tensors

/// torchvision's colour operations on float images (`transforms.functional` on tensors): a
/// test compares each with fixtures computed by torchvision itself.
public enum ColourOps {
  /// The luma torchvision uses: 0.2989 R + 0.587 G + 0.114 B.
  @inline(__always)
  static func gray(_ p: UnsafePointer<Float>) -> Float { 0.2989 * p[0] + 0.587 * p[1] + 0.114 * p[2] }

  /// `adjust_brightness`: blend with black, clamp(f * x, 0, 1).
  public static func brightness(_ image: UnsafeMutablePointer<Float>, pixels: Int, factor: Float) {
    for i in 0..<(pixels * 3) { image[i] = min(max(factor * image[i], 0), 1) }
  }

  /// `adjust_contrast`: blend with the mean luma of the whole image.
  public static func contrast(_ image: UnsafeMutablePointer<Float>, pixels: Int, factor: Float) {
    var sum: Float = 0
    for p in 0..<pixels { sum += gray(image + p * 3) }
    let mean = (1 - factor) * (sum / Float(pixels))
    for i in 0..<(pixels * 3) { image[i] = min(max(factor * image[i] + mean, 0), 1) }
  }

  /// `adjust_saturation`: blend each pixel with its luma.
  public static func saturation(_ image: UnsafeMutablePointer<Float>, pixels: Int, factor: Float) {
    for p in 0..<pixels {
      let q = image + p * 3
      let g = (1 - factor) * gray(q)
      q[0] = min(max(factor * q[0] + g, 0), 1)
      q[1] = min(max(factor * q[1] + g, 0), 1)
      q[2] = min(max(factor * q[2] + g, 0), 1)
    }
  }

  /// `adjust_hue`: to HSV (torchvision's `_rgb2hsv`), shift the hue by `factor` turns
  /// (in [-0.5, 0.5]), back to RGB (`_hsv2rgb`).
  public static func hue(_ image: UnsafeMutablePointer<Float>, pixels: Int, factor: Float) {
    for p in 0..<pixels {
      let q = image + p * 3
      let (r, g, b) = (q[0], q[1], q[2])
      let maxc = max(r, g, b)
      let minc = min(r, g, b)
      let equal = maxc == minc
      let cr = maxc - minc
      let s = cr / (equal ? 1 : maxc)
      let divisor = equal ? 1 : cr
      let rc = (maxc - r) / divisor
      let gc = (maxc - g) / divisor
      let bc = (maxc - b) / divisor
      var h: Float
      if maxc == r {
        h = bc - gc
      } else if maxc == g {
        h = 2 + rc - bc
      } else {
        h = 4 + gc - rc
      }
      h = fmodf(h / 6 + 1, 1)
      h = h + factor
      h -= (h / 1).rounded(.down)
      let v = maxc
      let scaled = h * 6
      let sector = scaled.rounded(.down)
      let f = scaled - sector
      let pp = min(max(v * (1 - s), 0), 1)
      let qq = min(max(v * (1 - s * f), 0), 1)
      let tt = min(max(v * (1 - s * (1 - f)), 0), 1)
      switch ((Int(sector) % 6) + 6) % 6 {
      case 0: (q[0], q[1], q[2]) = (v, tt, pp)
      case 1: (q[0], q[1], q[2]) = (qq, v, pp)
      case 2: (q[0], q[1], q[2]) = (pp, v, tt)
      case 3: (q[0], q[1], q[2]) = (pp, qq, v)
      case 4: (q[0], q[1], q[2]) = (tt, pp, v)
      default: (q[0], q[1], q[2]) = (v, pp, qq)
      }
    }
  }

  /// `rgb_to_grayscale(num_output_channels=3)`.
  public static func grayscale(_ image: UnsafeMutablePointer<Float>, pixels: Int) {
    for p in 0..<pixels {
      let q = image + p * 3
      let g = gray(q)
      q[0] = g
      q[1] = g
      q[2] = g
    }
  }

  /// `gaussian_blur` with an odd `kernelSize` and `sigma`: torchvision's sampled kernel,
  /// reflect padding, separable. `scratch` holds a copy of the image.
  public static func gaussianBlur(
    _ image: UnsafeMutablePointer<Float>, width: Int, height: Int, kernelSize: Int, sigma: Float,
    scratch: UnsafeMutablePointer<Float>
  ) {
    let half = kernelSize / 2
    var kernel = (0..<kernelSize).map { i -> Float in
      let x = Float(i) - Float(kernelSize - 1) * 0.5
      return exp(-0.5 * (x / sigma) * (x / sigma))
    }
    let total = kernel.reduce(0, +)
    for i in 0..<kernelSize { kernel[i] /= total }
    @inline(__always) func reflect(_ i: Int, _ n: Int) -> Int {
      guard n > 1 else { return 0 }
      var j = i
      while j < 0 || j >= n { j = j < 0 ? -j : 2 * (n - 1) - j }
      return j
    }
    // Rows into scratch, then columns back into the image.
    for y in 0..<height {
      for x in 0..<width {
        var sum = SIMD3<Float>(repeating: 0)
        for k in 0..<kernelSize {
          let p = image + (y * width + reflect(x + k - half, width)) * 3
          sum += kernel[k] * SIMD3(p[0], p[1], p[2])
        }
        let o = scratch + (y * width + x) * 3
        (o[0], o[1], o[2]) = (sum.x, sum.y, sum.z)
      }
    }
    for y in 0..<height {
      for x in 0..<width {
        var sum = SIMD3<Float>(repeating: 0)
        for k in 0..<kernelSize {
          let p = scratch + (reflect(y + k - half, height) * width + x) * 3
          sum += kernel[k] * SIMD3(p[0], p[1], p[2])
        }
        let o = image + (y * width + x) * 3
        (o[0], o[1], o[2]) = (sum.x, sum.y, sum.z)
      }
    }
  }
}

/// torchvision's `RandomResizedCrop.get_params`: up to ten tries at an area fraction in
/// `scale` and a log-uniform aspect ratio in `ratio`, then the centred crop of the nearest
/// allowed ratio.
public func randomResizedCrop(
  width: Int, height: Int, scale: ClosedRange<Float>, ratio: ClosedRange<Float>, _ rng: inout SplitMix64
) -> PixelRect {
  let area = Float(width * height)
  let logRatio = (log(ratio.lowerBound), log(ratio.upperBound))
  for _ in 0..<10 {
    let target = area * rng.uniform(scale.lowerBound, scale.upperBound)
    let aspect = exp(rng.uniform(logRatio.0, logRatio.1))
    let w = Int((target * aspect).squareRoot().rounded())
    let h = Int((target / aspect).squareRoot().rounded())
    if w > 0 && w <= width && h > 0 && h <= height {
      let y = Int(rng.next() % UInt64(height - h + 1))
      let x = Int(rng.next() % UInt64(width - w + 1))
      return PixelRect(x: x, y: y, width: w, height: h)
    }
  }
  let inRatio = Float(width) / Float(height)
  var w = width
  var h = height
  if inRatio < ratio.lowerBound {
    h = Int((Float(w) / ratio.lowerBound).rounded())
  } else if inRatio > ratio.upperBound {
    w = Int((Float(h) * ratio.upperBound).rounded())
  }
  return PixelRect(x: (width - w) / 2, y: (height - h) / 2, width: w, height: h)
}

/// SimCLR's augmentation as in the reference code: random resized crop (scale 0.08-1, ratio
/// 3/4-4/3), horizontal flip with p = 0.5, colour jitter with p = 0.8 (brightness, contrast and
/// saturation factors in [1 - 0.8 s, 1 + 0.8 s], hue in [-0.2 s, 0.2 s], in random order),
/// grayscale with p = 0.2, and optionally Gaussian blur with p = 0.5 (kernel 10% of the side,
/// sigma in [0.1, 2]). `strength` is s.
public struct SimCLRAugmentation: Sendable {
  public var strength: Float
  public var blur: Bool
  public var scale: ClosedRange<Float> = 0.08...1
  public var ratio: ClosedRange<Float> = Float(3.0 / 4.0)...Float(4.0 / 3.0)

  public init(strength: Float = 1, blur: Bool = false) {
    self.strength = strength
    self.blur = blur
  }
}

/// Per-thread buffers for augmenting, reused from image to image.
final class AugmentScratch {
  let resizer = Resizer()
  var copy: [Float] = []
}

/// How the loader turns a packed image into network input.
public enum Transform: Sendable {
  /// The packed pixels as they are (evaluation).
  case none
  /// Two independent SimCLR views of each image.
  case simCLR(SimCLRAugmentation)
  /// A light augmentation for supervised fine-tuning: a random resized crop keeping `scale`
  /// of the area (the default keeps most of an aligned face, so attributes such as hats and
  /// beards stay in the picture), and a horizontal flip with p = 0.5.
  case finetune(scale: ClosedRange<Float>)

  public static let finetuneDefault = Transform.finetune(scale: 0.5...1)

  var views: Int {
    if case .simCLR = self { return 2 }
    return 1
  }

  /// Writes one view of the `size` x `size` packed image `source` into `output` as RGB floats
  /// in [0, 1] (not yet normalised).
  func apply(
    source: UnsafePointer<UInt8>, size: Int, output: UnsafeMutablePointer<Float>, rng: inout SplitMix64,
    scratch: AugmentScratch
  ) {
    let pixels = size * size
    switch self {
    case .none:
      for i in 0..<(pixels * 3) { output[i] = Float(source[i]) * (1 / 255) }
      return
    case .finetune(let scale):
      let crop = randomResizedCrop(
        width: size, height: size, scale: scale, ratio: Float(3.0 / 4.0)...Float(4.0 / 3.0), &rng)
      resize(source, size: size, crop: crop, output: output, scratch: scratch)
      if rng.uniform() < 0.5 { flip(output, size: size) }
    case .simCLR(let augmentation):
      let crop = randomResizedCrop(
        width: size, height: size, scale: augmentation.scale, ratio: augmentation.ratio, &rng)
      resize(source, size: size, crop: crop, output: output, scratch: scratch)
      if rng.uniform() < 0.5 { flip(output, size: size) }
      let s = augmentation.strength
      if rng.uniform() < 0.8 {
        var order = [0, 1, 2, 3]
        for i in stride(from: 3, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        for operation in order {
          switch operation {
          case 0: ColourOps.brightness(output, pixels: pixels, factor: rng.uniform(max(0, 1 - 0.8 * s), 1 + 0.8 * s))
          case 1: ColourOps.contrast(output, pixels: pixels, factor: rng.uniform(max(0, 1 - 0.8 * s), 1 + 0.8 * s))
          case 2: ColourOps.saturation(output, pixels: pixels, factor: rng.uniform(max(0, 1 - 0.8 * s), 1 + 0.8 * s))
          default: ColourOps.hue(output, pixels: pixels, factor: rng.uniform(-min(0.5, 0.2 * s), min(0.5, 0.2 * s)))
          }
        }
      }
      if rng.uniform() < 0.2 { ColourOps.grayscale(output, pixels: pixels) }
      if augmentation.blur && rng.uniform() < 0.5 {
        let kernel = max(3, (size / 10) | 1)
        if scratch.copy.count < pixels * 3 { scratch.copy = [Float](repeating: 0, count: pixels * 3) }
        let sigma = rng.uniform(0.1, 2)
        scratch.copy.withUnsafeMutableBufferPointer {
          ColourOps.gaussianBlur(
            output, width: size, height: size, kernelSize: kernel, sigma: sigma, scratch: $0.baseAddress!)
        }
      }
    }
  }

  private func resize(
    _ source: UnsafePointer<UInt8>, size: Int, crop: PixelRect, output: UnsafeMutablePointer<Float>,
    scratch: AugmentScratch
  ) {
    scratch.resizer.resize(
      source: source, sourceWidth: size, crop: crop, outputWidth: size, outputHeight: size, output: output)
    for i in 0..<(size * size * 3) { output[i] = min(max(output[i] * (1 / 255), 0), 1) }
  }

  private func flip(_ image: UnsafeMutablePointer<Float>, size: Int) {
    for y in 0..<size {
      let row = image + y * size * 3
      for x in 0..<(size / 2) {
        let a = row + x * 3
        let b = row + (size - 1 - x) * 3
        swap(&a[0], &b[0])
        swap(&a[1], &b[1])
        swap(&a[2], &b[2])
      }
    }
  }
}

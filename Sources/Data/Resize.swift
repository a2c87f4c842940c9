// Antialiased bilinear resize of an 8-bit RGB crop, with the weights of PyTorch's
// interpolate(mode="bilinear", antialias=True) (the same triangle filter as PIL's BILINEAR).

/// The taps of one axis: output pixel `o` reads `count[o]` input pixels from `start[o]` on,
/// with `weights[o * width ..< o * width + count[o]]`, which sum to 1.
struct ResizeTaps {
  var start: [Int32] = []
  var count: [Int32] = []
  var weights: [Float] = []
  var width = 0

  /// For downscaling the filter widens to the scale, so every input pixel contributes (no
  /// aliasing); for upscaling it is plain bilinear with half-pixel centres.
  mutating func compute(input: Int, output: Int) {
    let scale = Double(input) / Double(output)
    let support = scale >= 1 ? scale : 1
    let inverse = scale >= 1 ? 1 / scale : 1
    width = Int((support * 2).rounded(.up)) + 1
    if start.count != output {
      start = [Int32](repeating: 0, count: output)
      count = [Int32](repeating: 0, count: output)
    }
    if weights.count < output * width { weights = [Float](repeating: 0, count: output * width) }
    for o in 0..<output {
      let center = scale * (Double(o) + 0.5)
      let low = max(Int(center - support + 0.5), 0)
      let high = min(Int(center + support + 0.5), input)
      var total = 0.0
      for j in low..<high {
        let x = abs((Double(j) - center + 0.5) * inverse)
        total += x < 1 ? 1 - x : 0
      }
      start[o] = Int32(low)
      count[o] = Int32(high - low)
      for j in low..<high {
        let x = abs((Double(j) - center + 0.5) * inverse)
        weights[o * width + j - low] = Float(total > 0 ? (x < 1 ? 1 - x : 0) / total : 0)
      }
    }
  }
}

/// Reusable buffers for resizing, one per thread, so the loader's inner loop allocates nothing
/// once the sizes are seen.
public final class Resizer {
  private var columns = ResizeTaps()
  private var rows = ResizeTaps()
  private var key = (0, 0, 0, 0)
  private var rowBuffer: [Float] = []

  public init() {}

  /// Resamples `crop` of the RGB image at `source` (rows of `sourceWidth` pixels) to
  /// `outputWidth` x `outputHeight`, writing RGB floats on the 0...255 scale (not rounded) to
  /// `output`. Horizontal pass first, into a crop.height x outputWidth buffer, then vertical.
  public func resize(
    source: UnsafePointer<UInt8>, sourceWidth: Int, crop: PixelRect, outputWidth: Int, outputHeight: Int,
    output: UnsafeMutablePointer<Float>
  ) {
    if key != (crop.width, outputWidth, crop.height, outputHeight) {
      columns.compute(input: crop.width, output: outputWidth)
      rows.compute(input: crop.height, output: outputHeight)
      key = (crop.width, outputWidth, crop.height, outputHeight)
    }
    let needed = crop.height * outputWidth * 3
    if rowBuffer.count < needed { rowBuffer = [Float](repeating: 0, count: needed) }
    columns.start.withUnsafeBufferPointer { xStart in
      columns.count.withUnsafeBufferPointer { xCount in
        columns.weights.withUnsafeBufferPointer { xWeights in
          rowBuffer.withUnsafeMutableBufferPointer { buffer in
            let xWidth = columns.width
            for y in 0..<crop.height {
              let row = source + ((crop.y + y) * sourceWidth + crop.x) * 3
              let out = buffer.baseAddress! + y * outputWidth * 3
              for o in 0..<outputWidth {
                var r: Float = 0
                var g: Float = 0
                var b: Float = 0
                let first = Int(xStart[o])
                for k in 0..<Int(xCount[o]) {
                  let w = xWeights[o * xWidth + k]
                  let p = row + (first + k) * 3
                  r += w * Float(p[0])
                  g += w * Float(p[1])
                  b += w * Float(p[2])
                }
                out[o * 3] = r
                out[o * 3 + 1] = g
                out[o * 3 + 2] = b
              }
            }
          }
        }
      }
    }
    rows.start.withUnsafeBufferPointer { yStart in
      rows.count.withUnsafeBufferPointer { yCount in
        rows.weights.withUnsafeBufferPointer { yWeights in
          rowBuffer.withUnsafeBufferPointer { buffer in
            let yWidth = rows.width
            let line = outputWidth * 3
            for o in 0..<outputHeight {
              let out = output + o * line
              out.update(repeating: 0, count: line)
              let first = Int(yStart[o])
              for k in 0..<Int(yCount[o]) {
                let w = yWeights[o * yWidth + k]
                let input = buffer.baseAddress! + (first + k) * line
                for i in 0..<line { out[i] += w * input[i] }
              }
            }
          }
        }
      }
    }
  }

  /// The crop resized and rounded to 8 bits: what `fairtune pack` stores.
  public func resize(_ image: RGBImage, crop: PixelRect, size: Int) -> RGBImage {
    var floats = [Float](repeating: 0, count: size * size * 3)
    image.pixels.withUnsafeBufferPointer { source in
      floats.withUnsafeMutableBufferPointer { out in
        resize(
          source: source.baseAddress!, sourceWidth: image.width, crop: crop, outputWidth: size, outputHeight: size,
          output: out.baseAddress!)
      }
    }
    return RGBImage(width: size, height: size, pixels: floats.map { UInt8(max(0, min(255, $0.rounded()))) })
  }
}

// A convolution on a small output map as one GEMM per kernel tap, over gathered rows.
//
// On a 2x2 map a padded 3x3 kernel meets the image at 16 of its 36 (pixel, tap) pairs: im2col
// multiplies 20 zero columns, and Winograd F(2x2) does as many multiplications as the 16 pairs
// while transforming the weights to 16/9 of their size every step. Grouping the pairs by tap,
// each tap is one product whose weights are a strided slice of the OHWI weight ([Cout, Cin] with
// row stride K*K*Cin): the weights are read once per pass, untransformed, and the weight
// gradient is accumulated straight into its slice. Only the activations of the valid pairs are
// gathered, and they are small on a small map.

/// The (output pixel, input pixel) pairs of every kernel tap, within one image.
public struct TapPlan: Equatable, Sendable {
  public struct Tap: Equatable, Sendable {
    /// ky * K + kx: the tap's weights start at `index * Cin` in each OHWI row.
    public let index: Int
    /// Output and input pixel (y * width + x, within one image) of each pair.
    public let outputs: [Int]
    public let inputs: [Int]
    /// The pairs are every output pixel, in order: the product can write the output directly.
    public let coversOutput: Bool
    /// Every input pixel maps to the same output pixel: the input itself is the gathered matrix.
    public let isIdentity: Bool
  }

  public let geometry: ConvGeometry
  /// Taps with at least one pair; those covering the whole output come first.
  public let taps: [Tap]

  public init(_ g: ConvGeometry) {
    geometry = g
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    var all: [Tap] = []
    for ky in 0..<g.kernel {
      for kx in 0..<g.kernel {
        var outputs: [Int] = []
        var inputs: [Int] = []
        for y in 0..<oh {
          let iy = y * g.stride - g.padding + ky
          guard iy >= 0 && iy < g.height else { continue }
          for x in 0..<ow {
            let ix = x * g.stride - g.padding + kx
            guard ix >= 0 && ix < g.width else { continue }
            outputs.append(y * ow + x)
            inputs.append(iy * g.width + ix)
          }
        }
        guard !outputs.isEmpty else { continue }
        let covers = outputs == Array(0..<(oh * ow))
        all.append(Tap(
          index: ky * g.kernel + kx, outputs: outputs, inputs: inputs, coversOutput: covers,
          isIdentity: covers && inputs == outputs && g.height * g.width == oh * ow))
      }
    }
    taps = all.filter(\.coversOutput) + all.filter { !$0.coversOutput }
  }

  /// Multiply-adds of one image's pairs per output and input channel.
  public var pairCount: Int { taps.reduce(0) { $0 + $1.outputs.count } }

  /// Rows of the largest gathered matrix.
  public var maximumRows: Int { geometry.batch * (taps.map(\.outputs.count).max() ?? 0) }

  /// g[(n * P + j), :] = x[n, pixels[j], :] for every image n: the rows of one tap.
  public static func gather(
    _ x: UnsafePointer<Float>, pixels: [Int], imagePixels: Int, channels c: Int, batch: Int,
    into g: UnsafeMutablePointer<Float>
  ) {
    let p = pixels.count
    pixels.withUnsafeBufferPointer { pixels in
      Parallel.forEach(batch, grain: 8) { images in
        for n in images {
          for j in 0..<p {
            (g + (n * p + j) * c).update(from: x + (n * imagePixels + pixels[j]) * c, count: c)
          }
        }
      }
    }
  }

  /// y[n, pixels[j], :] += g[(n * P + j), :]: the adjoint of `gather`. A tap's pixels are
  /// distinct, so images split over workers never write the same row.
  public static func scatterAdd(
    _ g: UnsafePointer<Float>, pixels: [Int], imagePixels: Int, channels c: Int, batch: Int,
    into y: UnsafeMutablePointer<Float>
  ) {
    let p = pixels.count
    pixels.withUnsafeBufferPointer { pixels in
      Parallel.forEach(batch, grain: 8) { images in
        for n in images {
          for j in 0..<p {
            let from = g + (n * p + j) * c
            let to = y + (n * imagePixels + pixels[j]) * c
            for i in 0..<c { to[i] += from[i] }
          }
        }
      }
    }
  }
}

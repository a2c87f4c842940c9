// Canvas: an RGB float image that anti-aliased shapes given in face coordinates are painted on.
import Foundation

typealias Colour = SIMD3<Float>

/// Shapes are given as signed distances in face units (negative inside), in a frame whose
/// origin is the face centre and whose unit is the face's half-width; a similarity transform
/// (the pose: roll, scale, position) maps it to pixels. Painting a shape visits only the pixels
/// of its bounding box, and covers each by its signed distance over one pixel (anti-aliasing).
struct Canvas {
  let size: Int
  /// `pixels[(y * size + x) * 3 + channel]`, in [0, 1].
  var pixels: [Float]
  /// Face frame to pixels: x = centreX + pixelsPerUnit * (cos * u - sin * v), y likewise.
  let centreX: Float
  let centreY: Float
  let pixelsPerUnit: Float
  let cosine: Float
  let sine: Float

  init(size: Int, centreX: Float, centreY: Float, pixelsPerUnit: Float, roll: Float) {
    self.size = size
    pixels = [Float](repeating: 0, count: size * size * 3)
    self.centreX = centreX
    self.centreY = centreY
    self.pixelsPerUnit = pixelsPerUnit
    cosine = cos(roll)
    sine = sin(roll)
  }

  /// One face unit in pixels is `pixelsPerUnit`; a pixel in face units is its inverse.
  var pixel: Float { 1 / pixelsPerUnit }

  /// Paints `colour(u, v)` over the shape `distance(u, v) < 0` inside the face-frame box
  /// `u in us, v in vs`, with `opacity`. `softness` (face units) widens the edge for blurred
  /// shapes such as blush; 0 gives a one-pixel anti-aliased edge.
  mutating func paint(
    u us: ClosedRange<Float>, v vs: ClosedRange<Float>, opacity: Float = 1, softness: Float = 0,
    distance: (Float, Float) -> Float, colour: (Float, Float) -> Colour
  ) {
    guard opacity > 0 else { return }
    var minX = Float.infinity
    var maxX = -Float.infinity
    var minY = Float.infinity
    var maxY = -Float.infinity
    for (u, v) in [
      (us.lowerBound, vs.lowerBound), (us.upperBound, vs.lowerBound), (us.lowerBound, vs.upperBound),
      (us.upperBound, vs.upperBound),
    ] {
      let x = centreX + pixelsPerUnit * (cosine * u - sine * v)
      let y = centreY + pixelsPerUnit * (sine * u + cosine * v)
      minX = min(minX, x)
      maxX = max(maxX, x)
      minY = min(minY, y)
      maxY = max(maxY, y)
    }
    let x0 = max(0, Int(minX.rounded(.down)) - 1)
    let x1 = min(size - 1, Int(maxX.rounded(.up)) + 1)
    let y0 = max(0, Int(minY.rounded(.down)) - 1)
    let y1 = min(size - 1, Int(maxY.rounded(.up)) + 1)
    guard x0 <= x1, y0 <= y1 else { return }
    let edge = 1 / (pixel + softness)
    let scale = 1 / pixelsPerUnit
    pixels.withUnsafeMutableBufferPointer { buffer in
      for y in y0...y1 {
        let dy = Float(y) + 0.5 - centreY
        for x in x0...x1 {
          let dx = Float(x) + 0.5 - centreX
          let u = (cosine * dx + sine * dy) * scale
          let v = (-sine * dx + cosine * dy) * scale
          let coverage = min(max(0.5 - distance(u, v) * edge, 0), 1) * opacity
          guard coverage > 0 else { continue }
          let c = colour(u, v)
          let p = buffer.baseAddress! + (y * size + x) * 3
          p[0] += (c.x - p[0]) * coverage
          p[1] += (c.y - p[1]) * coverage
          p[2] += (c.z - p[2]) * coverage
        }
      }
    }
  }

  /// Calls `body(x, y, pixel)` for every pixel with its face-frame position, for whole-image
  /// passes (background, lighting).
  mutating func forEachPixel(_ body: (_ u: Float, _ v: Float, _ pixel: UnsafeMutablePointer<Float>) -> Void) {
    let scale = 1 / pixelsPerUnit
    pixels.withUnsafeMutableBufferPointer { buffer in
      for y in 0..<size {
        let dy = Float(y) + 0.5 - centreY
        for x in 0..<size {
          let dx = Float(x) + 0.5 - centreX
          body(
            (cosine * dx + sine * dy) * scale, (-sine * dx + cosine * dy) * scale,
            buffer.baseAddress! + (y * size + x) * 3)
        }
      }
    }
  }

  /// Separable Gaussian blur with standard deviation `sigma` pixels (edges clamped).
  mutating func blur(sigma: Float) {
    guard sigma > 0.05 else { return }
    let radius = max(1, Int((3 * sigma).rounded(.up)))
    var kernel = (-radius...radius).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
    let total = kernel.reduce(0, +)
    kernel = kernel.map { $0 / total }
    var temporary = pixels
    let n = size
    for pass in 0..<2 {
      temporary.withUnsafeMutableBufferPointer { out in
        pixels.withUnsafeBufferPointer { input in
          for y in 0..<n {
            for x in 0..<n {
              var sum = Colour(repeating: 0)
              for k in -radius...radius {
                let sx = pass == 0 ? min(max(x + k, 0), n - 1) : x
                let sy = pass == 1 ? min(max(y + k, 0), n - 1) : y
                let p = input.baseAddress! + (sy * n + sx) * 3
                sum += kernel[k + radius] * Colour(p[0], p[1], p[2])
              }
              let o = out.baseAddress! + (y * n + x) * 3
              o[0] = sum.x
              o[1] = sum.y
              o[2] = sum.z
            }
          }
        }
      }
      swap(&pixels, &temporary)
    }
  }
}

/// Signed distance to an ellipse with centre (cu, cv), radii (ru, rv), turned by `angle`
/// (first-order: exact on the boundary, good enough for a one-pixel edge).
@inline(__always)
func ellipseDistance(_ u: Float, _ v: Float, _ cu: Float, _ cv: Float, _ ru: Float, _ rv: Float, angle: Float = 0)
  -> Float
{
  var x = u - cu
  var y = v - cv
  if angle != 0 {
    let c = cos(angle)
    let s = sin(angle)
    (x, y) = (c * x + s * y, -s * x + c * y)
  }
  let f = ((x / ru) * (x / ru) + (y / rv) * (y / rv)).squareRoot()
  let g = ((x / (ru * ru)) * (x / (ru * ru)) + (y / (rv * rv)) * (y / (rv * rv))).squareRoot()
  return g > 1e-6 ? (f - 1) * f / g : -min(ru, rv)
}

/// Signed distance to a stroke of half-width `radius` along the polyline `points`.
@inline(__always)
func strokeDistance(_ u: Float, _ v: Float, _ points: [SIMD2<Float>], radius: Float) -> Float {
  var best = Float.infinity
  let p = SIMD2(u, v)
  for i in 0..<(points.count - 1) {
    let a = points[i]
    let ab = points[i + 1] - a
    let t = min(max(((p - a) * ab).sum() / max((ab * ab).sum(), 1e-12), 0), 1)
    let d = p - (a + t * ab)
    best = min(best, (d * d).sum())
  }
  return best.squareRoot() - radius
}

/// Points along the quadratic Bezier curve from `a` through control `c` to `b`.
func curve(_ a: SIMD2<Float>, _ c: SIMD2<Float>, _ b: SIMD2<Float>, segments: Int = 10) -> [SIMD2<Float>] {
  (0...segments).map { i in
    let t = Float(i) / Float(segments)
    return (1 - t) * (1 - t) * a + 2 * (1 - t) * t * c + t * t * b
  }
}

/// Smooth value noise in [-1, 1] on a unit lattice, for hair strands, stubble and skin.
@inline(__always)
func valueNoise(_ u: Float, _ v: Float, seed: UInt32) -> Float {
  let x0 = u.rounded(.down)
  let y0 = v.rounded(.down)
  let fx = u - x0
  let fy = v - y0
  let sx = fx * fx * (3 - 2 * fx)
  let sy = fy * fy * (3 - 2 * fy)
  let ix = Int32(truncatingIfNeeded: Int(x0))
  let iy = Int32(truncatingIfNeeded: Int(y0))
  let a = latticeValue(ix, iy, seed)
  let b = latticeValue(ix &+ 1, iy, seed)
  let c = latticeValue(ix, iy &+ 1, seed)
  let d = latticeValue(ix &+ 1, iy &+ 1, seed)
  return (a + (b - a) * sx) + ((c + (d - c) * sx) - (a + (b - a) * sx)) * sy
}

@inline(__always)
private func latticeValue(_ x: Int32, _ y: Int32, _ seed: UInt32) -> Float {
  var h = UInt32(bitPattern: x) &* 0x8DA6_B343 ^ UInt32(bitPattern: y) &* 0xD816_3841 ^ seed &* 0xCB1A_B31F
  h ^= h >> 13
  h &*= 0x5BD1_E995
  h ^= h >> 15
  return Float(h & 0xFFFF) / 32767.5 - 1
}

// Winograd F(m x m, 3 x 3) convolution kernels for NHWC: tile transforms and their adjoints.
//
// Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). A 3x3,
// stride-1 convolution becomes t*t independent GEMMs (t = m + 2) in the transform domain:
//   forward   M_xi[P, Cout] = V_xi[P, Cin] * U_xi[Cout, Cin]^T
//   input grad dV_xi[P, Cin] = dM_xi[P, Cout] * U_xi[Cout, Cin]
//   weight grad dU_xi[Cout, Cin] = dM_xi[P, Cout]^T * V_xi[P, Cin]
// with V = B^T d B (input tiles), U = G g G^T (weights), Y = A^T M A (output tiles). Each
// backward transform is the exact adjoint of its forward one, so the gradients are exact for
// the function the forward computes.

/// A small dense matrix with its nonzeros listed per row.
public struct TransformMatrix: Sendable {
  public let rows: Int
  public let columns: Int
  public let values: [Float]
  let nonzeros: [[(column: Int, value: Float)]]

  public init(rows: Int, columns: Int, _ values: [Float]) {
    precondition(values.count == rows * columns)
    self.rows = rows
    self.columns = columns
    self.values = values
    nonzeros = (0..<rows).map { i in
      (0..<columns).compactMap { j in values[i * columns + j] == 0 ? nil : (j, values[i * columns + j]) }
    }
  }

  public var transposed: TransformMatrix {
    var t = [Float](repeating: 0, count: values.count)
    for i in 0..<rows { for j in 0..<columns { t[j * rows + i] = values[i * columns + j] } }
    return TransformMatrix(rows: columns, columns: rows, t)
  }
}

public struct WinogradTransform: Sendable {
  /// Output tile size m.
  public let outputTile: Int
  /// Input tile size t = m + 2.
  public var inputTile: Int { outputTile + 2 }
  public let inputTransposed: TransformMatrix  // B^T: t x t
  public let kernel: TransformMatrix  // G: t x 3
  public let outputTransposed: TransformMatrix  // A^T: m x t

  /// F(2x2, 3x3): points 0, 1, -1, infinity.
  public static let f2 = WinogradTransform(
    outputTile: 2,
    inputTransposed: TransformMatrix(rows: 4, columns: 4, [
      1, 0, -1, 0,
      0, 1, 1, 0,
      0, -1, 1, 0,
      0, 1, 0, -1,
    ]),
    kernel: TransformMatrix(rows: 4, columns: 3, [
      1, 0, 0,
      0.5, 0.5, 0.5,
      0.5, -0.5, 0.5,
      0, 0, 1,
    ]),
    outputTransposed: TransformMatrix(rows: 2, columns: 4, [
      1, 1, 1, 0,
      0, 1, -1, -1,
    ]))

  /// F(4x4, 3x3): points 0, 1, -1, 2, -2, infinity.
  public static let f4 = WinogradTransform(
    outputTile: 4,
    inputTransposed: TransformMatrix(rows: 6, columns: 6, [
      4, 0, -5, 0, 1, 0,
      0, -4, -4, 1, 1, 0,
      0, 4, -4, -1, 1, 0,
      0, -2, -1, 2, 1, 0,
      0, 2, -1, -2, 1, 0,
      0, 4, 0, -5, 0, 1,
    ]),
    kernel: TransformMatrix(rows: 6, columns: 3, [
      1.0 / 4, 0, 0,
      -1.0 / 6, -1.0 / 6, -1.0 / 6,
      -1.0 / 6, 1.0 / 6, -1.0 / 6,
      1.0 / 24, 1.0 / 12, 1.0 / 6,
      1.0 / 24, -1.0 / 12, 1.0 / 6,
      0, 0, 1,
    ]),
    outputTransposed: TransformMatrix(rows: 4, columns: 6, [
      1, 1, 1, 1, 1, 0,
      0, 1, -1, 2, -2, 0,
      0, 1, 1, 4, 4, 0,
      0, 1, -1, 8, -8, 1,
    ]))

  /// The tiling of an H x W output (same size as the input: padding 1).
  public func tiles(height: Int, width: Int) -> (rows: Int, columns: Int) {
    ((height + outputTile - 1) / outputTile, (width + outputTile - 1) / outputTile)
  }

  /// out[i][j] = sum_{k,l} L[i][k] in[k][l] L[j][l], every entry a vector of `channels`
  /// floats; `input` returns nil for an all-zero entry. `scratch` holds L.rows * L.columns
  /// vectors.
  @inline(__always)
  static func apply(
    _ l: TransformMatrix, channels c: Int, scratch: UnsafeMutablePointer<Float>,
    input: (Int, Int) -> UnsafePointer<Float>?, output: (Int, Int) -> UnsafeMutablePointer<Float>,
    accumulate: Bool
  ) {
    // Stage 1: tmp[i][col] = sum_k L[i][k] in[k][col]
    for i in 0..<l.rows {
      for col in 0..<l.columns {
        let tmp = scratch + (i * l.columns + col) * c
        var first = true
        for (k, v) in l.nonzeros[i] {
          guard let src = input(k, col) else { continue }
          if first {
            for ch in 0..<c { tmp[ch] = v * src[ch] }
            first = false
          } else {
            for ch in 0..<c { tmp[ch] += v * src[ch] }
          }
        }
        if first { tmp.update(repeating: 0, count: c) }
      }
    }
    // Stage 2: out[i][j] = sum_col tmp[i][col] L[j][col]
    for i in 0..<l.rows {
      for j in 0..<l.rows {
        let out = output(i, j)
        let row = l.nonzeros[j]
        if !accumulate {
          let (k0, v0) = row[0]
          let t0 = scratch + (i * l.columns + k0) * c
          for ch in 0..<c { out[ch] = v0 * t0[ch] }
        }
        for (index, (k, v)) in row.enumerated() where accumulate || index > 0 {
          let t = scratch + (i * l.columns + k) * c
          for ch in 0..<c { out[ch] += v * t[ch] }
        }
      }
    }
  }

  /// V[t*t, P, C] from x[N, H, W, C]: the transformed input tiles (padding 1).
  public func transformInput(
    _ x: UnsafePointer<Float>, batch n: Int, height h: Int, width w: Int, channels c: Int,
    into v: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) {
    if writtenOut(channels: c) { return transformInputF4(x, batch: n, height: h, width: w, channels: c, into: v) }
    let (th, tw) = tiles(height: h, width: w)
    let p = n * th * tw
    let t = inputTile
    let m = outputTile
    let bt = inputTransposed
    Parallel.forEachChunk(p, grain: 4) { chunk, range in
      let s = scratch + chunk * t * t * c
      for tile in range {
        let image = tile / (th * tw)
        let y0 = (tile / tw % th) * m - 1
        let x0 = (tile % tw) * m - 1
        let base = x + image * h * w * c
        Self.apply(bt, channels: c, scratch: s,
          input: { k, l in
            let iy = y0 + k
            let ix = x0 + l
            return iy >= 0 && iy < h && ix >= 0 && ix < w ? base + (iy * w + ix) * c : nil
          },
          output: { i, j in v + ((i * t + j) * p + tile) * c },
          accumulate: false)
      }
    }
  }

  /// U[t*t, Cout, Cin] from OHWI 3x3 weights.
  public func transformWeights(
    _ weights: UnsafePointer<Float>, outputChannels o: Int, inputChannels c: Int,
    into u: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) {
    if writtenOut(channels: c) { return transformWeightsF4(weights, outputChannels: o, inputChannels: c, into: u) }
    let t = inputTile
    let g = kernel
    Parallel.forEachChunk(o, grain: 8) { chunk, range in
      let s = scratch + chunk * t * t * c
      for out in range {
        let filter = weights + out * 9 * c
        Self.apply(g, channels: c, scratch: s,
          input: { k, l in filter + (k * 3 + l) * c },
          output: { i, j in u + ((i * t + j) * o + out) * c },
          accumulate: false)
      }
    }
  }

  /// y[N, H, W, Cout] from M[t*t, P, Cout]; outputs past the image edge are dropped. With
  /// `observer`, every row of y is reported once written (see `ProductObserver`).
  public func transformOutput(
    _ mm: UnsafePointer<Float>, batch n: Int, height h: Int, width w: Int, channels c: Int,
    into y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, observer: ProductObserver? = nil
  ) {
    if writtenOut(channels: c) {
      return transformOutputF4(mm, batch: n, height: h, width: w, channels: c, into: y, observer: observer)
    }
    defer { if let observer { BLAS.report(y, rows: n * h * w, channels: c, to: observer) } }
    let (th, tw) = tiles(height: h, width: w)
    let p = n * th * tw
    let t = inputTile
    let m = outputTile
    let at = outputTransposed
    Parallel.forEachChunk(p, grain: 4) { chunk, range in
      let s = scratch + chunk * (t * t + m * m) * c
      let tileOut = s + t * t * c
      for tile in range {
        let image = tile / (th * tw)
        let y0 = (tile / tw % th) * m
        let x0 = (tile % tw) * m
        Self.apply(at, channels: c, scratch: s,
          input: { k, l in mm + ((k * t + l) * p + tile) * c },
          output: { i, j in tileOut + (i * m + j) * c },
          accumulate: false)
        let base = y + image * h * w * c
        for i in 0..<min(m, h - y0) {
          for j in 0..<min(m, w - x0) {
            (base + ((y0 + i) * w + x0 + j) * c).update(from: tileOut + (i * m + j) * c, count: c)
          }
        }
      }
    }
  }

  /// dM[t*t, P, Cout] from dy[N, H, W, Cout]: the adjoint of `transformOutput`.
  public func transformOutputGradient(
    _ dy: UnsafePointer<Float>, batch n: Int, height h: Int, width w: Int, channels c: Int,
    into dm: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) {
    if writtenOut(channels: c) { return transformOutputGradientF4(dy, batch: n, height: h, width: w, channels: c, into: dm) }
    let (th, tw) = tiles(height: h, width: w)
    let p = n * th * tw
    let t = inputTile
    let m = outputTile
    let a = outputTransposed.transposed
    Parallel.forEachChunk(p, grain: 4) { chunk, range in
      let s = scratch + chunk * t * m * c
      for tile in range {
        let image = tile / (th * tw)
        let y0 = (tile / tw % th) * m
        let x0 = (tile % tw) * m
        let base = dy + image * h * w * c
        Self.apply(a, channels: c, scratch: s,
          input: { k, l in
            y0 + k < h && x0 + l < w ? base + ((y0 + k) * w + x0 + l) * c : nil
          },
          output: { i, j in dm + ((i * t + j) * p + tile) * c },
          accumulate: false)
      }
    }
  }

  /// dx[N, H, W, Cin] from dV[t*t, P, Cin]: the adjoint of `transformInput` (overwrites dx,
  /// or adds to it with `accumulate`).
  public func transformInputGradient(
    _ dv: UnsafePointer<Float>, batch n: Int, height h: Int, width w: Int, channels c: Int,
    into dx: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, accumulate: Bool = false,
    observer: ProductObserver? = nil
  ) {
    if writtenOut(channels: c) {
      return transformInputGradientF4(
        dv, batch: n, height: h, width: w, channels: c, into: dx, accumulate: accumulate, observer: observer)
    }
    defer { if let observer { BLAS.report(dx, rows: n * h * w, channels: c, to: observer) } }
    let (th, tw) = tiles(height: h, width: w)
    let p = n * th * tw
    let t = inputTile
    let m = outputTile
    let b = inputTransposed.transposed
    // Tiles overlap by two pixels, so one image's tiles are accumulated by one worker.
    Parallel.forEachChunk(n, grain: 1) { chunk, range in
      let s = scratch + chunk * (2 * t * t) * c
      let patch = s + t * t * c
      for image in range {
        let base = dx + image * h * w * c
        if !accumulate { base.update(repeating: 0, count: h * w * c) }
        for ty in 0..<th {
          for tx in 0..<tw {
            let tile = (image * th + ty) * tw + tx
            Self.apply(b, channels: c, scratch: s,
              input: { k, l in dv + ((k * t + l) * p + tile) * c },
              output: { i, j in patch + (i * t + j) * c },
              accumulate: false)
            let y0 = ty * m - 1
            let x0 = tx * m - 1
            for i in 0..<t where y0 + i >= 0 && y0 + i < h {
              for j in 0..<t where x0 + j >= 0 && x0 + j < w {
                let dst = base + ((y0 + i) * w + x0 + j) * c
                let src = patch + (i * t + j) * c
                for ch in 0..<c { dst[ch] += src[ch] }
              }
            }
          }
        }
      }
    }
  }

  /// dW[Cout, 3, 3, Cin] += the adjoint of `transformWeights` applied to dU[t*t, Cout, Cin].
  public func accumulateWeightGradient(
    _ du: UnsafePointer<Float>, outputChannels o: Int, inputChannels c: Int,
    into dw: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) {
    if writtenOut(channels: c) { return accumulateWeightGradientF4(du, outputChannels: o, inputChannels: c, into: dw) }
    let t = inputTile
    let gt = kernel.transposed
    Parallel.forEachChunk(o, grain: 8) { chunk, range in
      let s = scratch + chunk * 3 * t * c
      for out in range {
        let filter = dw + out * 9 * c
        Self.apply(gt, channels: c, scratch: s,
          input: { k, l in du + ((k * t + l) * o + out) * c },
          output: { i, j in filter + (i * 3 + j) * c },
          accumulate: true)
      }
    }
  }

  /// Scratch floats the transforms above need, for `channels` up to the given count.
  public func scratchCount(channels: Int) -> Int {
    Parallel.workers * 2 * inputTile * inputTile * channels
  }

  /// Runs the t*t transform-domain GEMMs, split over the workers.
  public func batchedProducts(_ body: (Int) -> Void) {
    let count = inputTile * inputTile
    Parallel.forEach(count) { range in for xi in range { body(xi) } }
  }
}

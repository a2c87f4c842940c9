// F(4x4, 3x3) tile transforms written out, eight channels at a time: each tile's 36 vectors
// are transformed in registers and a small stack buffer, instead of one pass over all channels
// per nonzero of the transform matrix (`WinogradTransform.apply`). The same matrices, so the
// same function up to rounding; layers whose channel count is not a multiple of 8 keep the
// general path.

typealias Lane = SIMD8<Float>

@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> Lane {
  UnsafeRawPointer(p).loadUnaligned(as: Lane.self)
}

@inline(__always)
private func store(_ v: Lane, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lane.self)
}

/// The six 1-D transforms of F(4x4, 3x3) and their adjoints: `o[k * os] = sum_i L[k][i] x[i * s]`.
enum F4 {
  /// B^T (6 -> 6), the input transform.
  @inline(__always)
  static func input(_ x: UnsafePointer<Lane>, _ s: Int, _ o: UnsafeMutablePointer<Lane>, _ os: Int) {
    let d0 = x[0], d1 = x[s], d2 = x[2 * s], d3 = x[3 * s], d4 = x[4 * s], d5 = x[5 * s]
    o[0] = 4 * d0 - 5 * d2 + d4
    o[os] = (d3 + d4) - 4 * (d1 + d2)
    o[2 * os] = (d4 - d3) + 4 * (d1 - d2)
    o[3 * os] = (d4 - d2) + 2 * (d3 - d1)
    o[4 * os] = (d4 - d2) - 2 * (d3 - d1)
    o[5 * os] = 4 * d1 - 5 * d3 + d5
  }

  /// B (6 -> 6), the adjoint of `input`.
  @inline(__always)
  static func inputAdjoint(_ x: UnsafePointer<Lane>, _ s: Int, _ o: UnsafeMutablePointer<Lane>, _ os: Int) {
    let v0 = x[0], v1 = x[s], v2 = x[2 * s], v3 = x[3 * s], v4 = x[4 * s], v5 = x[5 * s]
    o[0] = 4 * v0
    o[os] = 4 * (v2 - v1 + v5) + 2 * (v4 - v3)
    o[2 * os] = -5 * v0 - 4 * (v1 + v2) - (v3 + v4)
    o[3 * os] = (v1 - v2) + 2 * (v3 - v4) - 5 * v5
    o[4 * os] = v0 + v1 + v2 + v3 + v4
    o[5 * os] = v5
  }

  /// A^T (6 -> 4), the output transform.
  @inline(__always)
  static func output(_ x: UnsafePointer<Lane>, _ s: Int, _ o: UnsafeMutablePointer<Lane>, _ os: Int) {
    let m0 = x[0], m1 = x[s], m2 = x[2 * s], m3 = x[3 * s], m4 = x[4 * s], m5 = x[5 * s]
    let sum12 = m1 + m2, difference12 = m1 - m2, sum34 = m3 + m4, difference34 = m3 - m4
    o[0] = m0 + sum12 + sum34
    o[os] = difference12 + 2 * difference34
    o[2 * os] = sum12 + 4 * sum34
    o[3 * os] = difference12 + 8 * difference34 + m5
  }

  /// A (4 -> 6), the adjoint of `output`.
  @inline(__always)
  static func outputAdjoint(_ x: UnsafePointer<Lane>, _ s: Int, _ o: UnsafeMutablePointer<Lane>, _ os: Int) {
    let g0 = x[0], g1 = x[s], g2 = x[2 * s], g3 = x[3 * s]
    let even = g0 + g2, odd = g1 + g3, even4 = g0 + 4 * g2, odd4 = 2 * g1 + 8 * g3
    o[0] = g0
    o[os] = even + odd
    o[2 * os] = even - odd
    o[3 * os] = even4 + odd4
    o[4 * os] = even4 - odd4
    o[5 * os] = g3
  }

  /// G (3 -> 6), the weight transform.
  @inline(__always)
  static func kernel(_ x: UnsafePointer<Lane>, _ s: Int, _ o: UnsafeMutablePointer<Lane>, _ os: Int) {
    let w0 = x[0], w1 = x[s], w2 = x[2 * s]
    let outer = Float(-1.0 / 6) * (w0 + w2), middle = Float(-1.0 / 6) * w1
    let outer4 = Float(1.0 / 24) * w0 + Float(1.0 / 6) * w2, middle4 = Float(1.0 / 12) * w1
    o[0] = Float(1.0 / 4) * w0
    o[os] = outer + middle
    o[2 * os] = outer - middle
    o[3 * os] = outer4 + middle4
    o[4 * os] = outer4 - middle4
    o[5 * os] = w2
  }

  /// G^T (6 -> 3), the adjoint of `kernel`.
  @inline(__always)
  static func kernelAdjoint(_ x: UnsafePointer<Lane>, _ s: Int, _ o: UnsafeMutablePointer<Lane>, _ os: Int) {
    let u0 = x[0], u1 = x[s], u2 = x[2 * s], u3 = x[3 * s], u4 = x[4 * s], u5 = x[5 * s]
    let sum12 = u1 + u2, difference12 = u2 - u1, sum34 = u3 + u4, difference34 = u3 - u4
    o[0] = Float(1.0 / 4) * u0 + Float(-1.0 / 6) * sum12 + Float(1.0 / 24) * sum34
    o[os] = Float(1.0 / 6) * difference12 + Float(1.0 / 12) * difference34
    o[2 * os] = Float(-1.0 / 6) * sum12 + Float(1.0 / 6) * sum34 + u5
  }

  /// out = L x L^T for an `rows` x `rows` tile x and a 1-D transform L of `rows` -> `outs`:
  /// L down each column into `tmp`, then along each row into `out` (row-major, `outs` wide).
  @inline(__always)
  static func apply2D(
    _ x: UnsafePointer<Lane>, rows: Int, outs: Int, tmp: UnsafeMutablePointer<Lane>,
    out: UnsafeMutablePointer<Lane>,
    _ transform: (UnsafePointer<Lane>, Int, UnsafeMutablePointer<Lane>, Int) -> Void
  ) {
    for column in 0..<rows { transform(x + column, rows, tmp + column, rows) }
    for row in 0..<outs { transform(tmp + row * rows, 1, out + row * outs, 1) }
  }
}

extension WinogradTransform {
  /// Whether the written-out F(4x4) kernels apply to `channels`.
  func writtenOut(channels: Int) -> Bool { outputTile == 4 && channels % Lane.scalarCount == 0 }

  func transformInputF4(
    _ x: UnsafePointer<Float>, batch n: Int, height h: Int, width w: Int, channels c: Int,
    into v: UnsafeMutablePointer<Float>
  ) {
    let (th, tw) = tiles(height: h, width: w)
    let p = n * th * tw
    Parallel.forEach(p, grain: 4) { range in
      withUnsafeTemporaryAllocation(of: Lane.self, capacity: 108) { buffer in
        let tile6 = buffer.baseAddress!, tmp = tile6 + 36, out = tmp + 36
        for tile in range {
          let image = tile / (th * tw)
          let y0 = (tile / tw % th) * 4 - 1
          let x0 = (tile % tw) * 4 - 1
          let base = x + image * h * w * c
          let rows = max(0, -y0)..<min(6, h - y0)
          let columns = max(0, -x0)..<min(6, w - x0)
          let full = rows.count == 6 && columns.count == 6
          if !full { tile6.update(repeating: .zero, count: 36) }
          for channel in stride(from: 0, to: c, by: 8) {
            for k in rows {
              let row = base + ((y0 + k) * w + x0) * c + channel
              for l in columns { tile6[k * 6 + l] = load(row + l * c) }
            }
            F4.apply2D(tile6, rows: 6, outs: 6, tmp: tmp, out: out, F4.input)
            for index in 0..<36 { store(out[index], v + (index * p + tile) * c + channel) }
          }
        }
      }
    }
  }

  func transformOutputF4(
    _ mm: UnsafePointer<Float>, batch n: Int, height h: Int, width w: Int, channels c: Int,
    into y: UnsafeMutablePointer<Float>, observer: ProductObserver?
  ) {
    let (th, tw) = tiles(height: h, width: w)
    let p = n * th * tw
    Parallel.forEachChunk(p, grain: 4) { worker, range in
      withUnsafeTemporaryAllocation(of: Lane.self, capacity: 76) { buffer in
        let tile6 = buffer.baseAddress!, tmp = tile6 + 36, out = tmp + 24
        for tile in range {
          let image = tile / (th * tw)
          let y0 = (tile / tw % th) * 4
          let x0 = (tile % tw) * 4
          let base = y + image * h * w * c
          let (rows, columns) = (min(4, h - y0), min(4, w - x0))
          for channel in stride(from: 0, to: c, by: 8) {
            for index in 0..<36 { tile6[index] = load(mm + (index * p + tile) * c + channel) }
            F4.apply2D(tile6, rows: 6, outs: 4, tmp: tmp, out: out, F4.output)
            for i in 0..<rows {
              let row = base + ((y0 + i) * w + x0) * c + channel
              for j in 0..<columns { store(out[i * 4 + j], row + j * c) }
            }
          }
          // The tile's rows of pixels are final and in cache.
          if let observer {
            for i in 0..<rows {
              let first = (image * h + y0 + i) * w + x0
              observer(worker, y, c, first..<(first + columns), 0..<c)
            }
          }
        }
      }
    }
  }

  func transformOutputGradientF4(
    _ dy: UnsafePointer<Float>, batch n: Int, height h: Int, width w: Int, channels c: Int,
    into dm: UnsafeMutablePointer<Float>
  ) {
    let (th, tw) = tiles(height: h, width: w)
    let p = n * th * tw
    Parallel.forEach(p, grain: 4) { range in
      withUnsafeTemporaryAllocation(of: Lane.self, capacity: 76) { buffer in
        let tile4 = buffer.baseAddress!, tmp = tile4 + 16, out = tmp + 24
        for tile in range {
          let image = tile / (th * tw)
          let y0 = (tile / tw % th) * 4
          let x0 = (tile % tw) * 4
          let base = dy + image * h * w * c
          let (rows, columns) = (min(4, h - y0), min(4, w - x0))
          if rows < 4 || columns < 4 { tile4.update(repeating: .zero, count: 16) }
          for channel in stride(from: 0, to: c, by: 8) {
            for k in 0..<rows {
              let row = base + ((y0 + k) * w + x0) * c + channel
              for l in 0..<columns { tile4[k * 4 + l] = load(row + l * c) }
            }
            F4.apply2D(tile4, rows: 4, outs: 6, tmp: tmp, out: out, F4.outputAdjoint)
            for index in 0..<36 { store(out[index], dm + (index * p + tile) * c + channel) }
          }
        }
      }
    }
  }

  func transformInputGradientF4(
    _ dv: UnsafePointer<Float>, batch n: Int, height h: Int, width w: Int, channels c: Int,
    into dx: UnsafeMutablePointer<Float>, accumulate: Bool, observer: ProductObserver?
  ) {
    let (th, tw) = tiles(height: h, width: w)
    let p = n * th * tw
    // Tiles overlap by two pixels, so one image's tiles are accumulated by one worker.
    Parallel.forEachChunk(n, grain: 1) { worker, range in
      withUnsafeTemporaryAllocation(of: Lane.self, capacity: 108) { buffer in
        let tile6 = buffer.baseAddress!, tmp = tile6 + 36, out = tmp + 36
        for image in range {
          let base = dx + image * h * w * c
          if !accumulate { base.update(repeating: 0, count: h * w * c) }
          for ty in 0..<th {
            for tx in 0..<tw {
              let tile = (image * th + ty) * tw + tx
              let y0 = ty * 4 - 1
              let x0 = tx * 4 - 1
              let rows = max(0, -y0)..<min(6, h - y0)
              let columns = max(0, -x0)..<min(6, w - x0)
              for channel in stride(from: 0, to: c, by: 8) {
                for index in 0..<36 { tile6[index] = load(dv + (index * p + tile) * c + channel) }
                F4.apply2D(tile6, rows: 6, outs: 6, tmp: tmp, out: out, F4.inputAdjoint)
                for i in rows {
                  let row = base + ((y0 + i) * w + x0) * c + channel
                  for j in columns { store(load(row + j * c) + out[i * 6 + j], row + j * c) }
                }
              }
            }
          }
          // The image's gradient is final and in cache.
          observer?(worker, dx, c, (image * h * w)..<((image + 1) * h * w), 0..<c)
        }
      }
    }
  }

  func transformWeightsF4(
    _ weights: UnsafePointer<Float>, outputChannels o: Int, inputChannels c: Int, into u: UnsafeMutablePointer<Float>
  ) {
    Parallel.forEach(o, grain: 8) { range in
      withUnsafeTemporaryAllocation(of: Lane.self, capacity: 63) { buffer in
        let tile3 = buffer.baseAddress!, tmp = tile3 + 9, out = tmp + 18
        for filterIndex in range {
          let filter = weights + filterIndex * 9 * c
          for channel in stride(from: 0, to: c, by: 8) {
            for index in 0..<9 { tile3[index] = load(filter + index * c + channel) }
            F4.apply2D(tile3, rows: 3, outs: 6, tmp: tmp, out: out, F4.kernel)
            for index in 0..<36 { store(out[index], u + (index * o + filterIndex) * c + channel) }
          }
        }
      }
    }
  }

  func accumulateWeightGradientF4(
    _ du: UnsafePointer<Float>, outputChannels o: Int, inputChannels c: Int, into dw: UnsafeMutablePointer<Float>
  ) {
    Parallel.forEach(o, grain: 8) { range in
      withUnsafeTemporaryAllocation(of: Lane.self, capacity: 63) { buffer in
        let tile6 = buffer.baseAddress!, tmp = tile6 + 36, out = tmp + 18
        for filterIndex in range {
          let filter = dw + filterIndex * 9 * c
          for channel in stride(from: 0, to: c, by: 8) {
            for index in 0..<36 { tile6[index] = load(du + (index * o + filterIndex) * c + channel) }
            F4.apply2D(tile6, rows: 6, outs: 3, tmp: tmp, out: out, F4.kernelAdjoint)
            for index in 0..<9 {
              let p = filter + index * c + channel
              store(load(p) + out[index], p)
            }
          }
        }
      }
    }
  }
}

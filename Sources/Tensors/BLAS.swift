// The sgemm wrapper (row-major) over OpenBLAS, its thread control, and the sgemm ceiling probe.
import CBLAS

/// Told that C[rows, columns] of a product (row stride `ldc`) is final, by the worker
/// (0..<`Parallel.workers`) that computed it, while that part is still in its cache: a
/// consumer's reduction over C (BatchNorm's statistics) rides on the product instead of a pass
/// of its own.
public typealias ProductObserver = (
  _ worker: Int, _ c: UnsafePointer<Float>, _ ldc: Int, _ rows: Range<Int>, _ columns: Range<Int>
) -> Void

public enum BLAS {
  /// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, all row-major. The product is split
  /// over `Parallel.workers` by rows of C (or by columns when C has few rows), each part a
  /// single-threaded OpenBLAS call: one pool of threads for GEMMs and elementwise work alike,
  /// so OpenBLAS's idle threads never spin against the elementwise loops.
  public static func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = true,
    observer: ProductObserver? = nil, precision: Precision? = nil
  ) {
    if m == 0 || n == 0 { return }
    if (precision ?? matmulPrecision) == .bf16Emulated {
      // Both operands rounded to bfloat16 into copies of their own (a call's own memory: GEMMs
      // run concurrently from parallel loops), then multiplied in fp32.
      let (rowsA, columnsA) = transposeA ? (k, m) : (m, k)
      let (rowsB, columnsB) = transposeB ? (n, k) : (k, n)
      let roundedA = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rowsA * columnsA))
      let roundedB = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rowsB * columnsB))
      defer {
        roundedA.deallocate()
        roundedB.deallocate()
      }
      BFloat16.round(a, rows: rowsA, columns: columnsA, ld: lda, into: roundedA, parallel: parallel)
      BFloat16.round(b, rows: rowsB, columns: columnsB, ld: ldb, into: roundedB, parallel: parallel)
      sgemm(
        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: roundedA, lda: columnsA, b: roundedB,
        ldb: columnsB, beta: beta, c: c, ldc: ldc, parallel: parallel, observer: observer, precision: .fp32)
      return
    }
    let work = Double(m) * Double(n) * Double(k)
    let parts = work < 4e6 || !parallel ? 1 : Parallel.workers
    // Rows of C made at a time when an observer reads them: about 1 MB, while the other
    // operand (packed again for each part) stays small beside the rows' own.
    let observedRows = observer != nil && n <= 256 ? max(64, (1 << 18) / n) : m
    // C[rows] (all columns) by one serial product per part of `observedRows`, each observed.
    func rowsOfC(_ worker: Int, _ rows: Range<Int>) {
      var start = rows.lowerBound
      while start < rows.upperBound {
        let part = start..<min(start + observedRows, rows.upperBound)
        let aPart = transposeA ? a + part.lowerBound : a + part.lowerBound * lda
        serialSgemm(transposeA, transposeB, part.count, n, k, alpha, aPart, lda, b, ldb, beta, c + part.lowerBound * ldc, ldc)
        observer?(worker, c, ldc, part, 0..<n)
        start = part.upperBound
      }
    }
    if parts <= 1 {
      rowsOfC(0, 0..<m)
    } else if observer == nil && k >= 8 * max(m, n) {
      // A long reduction into a small C (a weight gradient over many pixels): split k, so
      // that each worker packs only its share of both operands, then add the partial products.
      let extra = reductionScratch.pointer(count: (parts - 1) * m * n)
      Parallel.forEachChunk(k, grain: max(1, k / parts)) { chunk, ks in
        let aPart = transposeA ? a + ks.lowerBound * lda : a + ks.lowerBound
        let bPart = transposeB ? b + ks.lowerBound : b + ks.lowerBound * ldb
        if chunk == 0 {
          serialSgemm(transposeA, transposeB, m, n, ks.count, alpha, aPart, lda, bPart, ldb, beta, c, ldc)
        } else {
          serialSgemm(transposeA, transposeB, m, n, ks.count, alpha, aPart, lda, bPart, ldb, 0, extra + (chunk - 1) * m * n, n)
        }
      }
      let chunks = Parallel.chunkCount(k, grain: max(1, k / parts))
      Parallel.forEach(m) { rows in
        for i in rows {
          for part in 0..<(chunks - 1) {
            let from = extra + part * m * n + i * n
            let to = c + i * ldc
            for j in 0..<n { to[j] += from[j] }
          }
        }
      }
    } else if m >= n {
      // Each worker packs all of the operand it does not split: split the longer side of C,
      // so that the one packed twice is the smaller.
      Parallel.forEachChunk(m, grain: max(1, m / parts)) { worker, rows in rowsOfC(worker, rows) }
    } else {
      Parallel.forEachChunk(n, grain: max(1, n / parts)) { worker, columns in
        let bPart = transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound
        serialSgemm(transposeA, transposeB, m, columns.count, k, alpha, a, lda, bPart, ldb, beta, c + columns.lowerBound, ldc)
        observer?(worker, c, ldc, 0..<m, columns)
      }
    }
  }

  /// Reports all `rows` rows of a finished [rows, channels] matrix to `observer`, split over
  /// the workers: for results that no product reported as it made them.
  public static func report(_ data: UnsafePointer<Float>, rows: Int, channels: Int, to observer: ProductObserver) {
    Parallel.forEachChunk(rows, grain: 64) { worker, range in observer(worker, data, channels, range, 0..<channels) }
  }

  @inline(__always)
  static func serialSgemm(
    _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int
  ) {
    cblas_sgemm(
      CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
  }

  public static var threads: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(newValue)) }
  }

  /// What every GEMM multiplies unless its call says otherwise: fp32, or bfloat16 operands
  /// (emulated). Set once per process by the training commands (`--precision`).
  nonisolated(unsafe) public static var matmulPrecision = Precision.fp32

  /// Partial products of a k-split GEMM.
  nonisolated(unsafe) private static var reductionScratch = Workspace()

  /// The workers of this process (see `setThreads`).
  public static var threadsPerRank: Int { Parallel.workers }

  /// Sets the workers that split GEMMs and elementwise loops; OpenBLAS itself runs one thread
  /// per call.
  public static func setThreads(_ count: Int) {
    threads = 1
    Parallel.workers = count
  }

  /// Measures square sgemm throughput (GFLOP/s, median of `repeats`) at size `size`, split over
  /// the workers like every other product: the ceiling the training step is compared with.
  public static func measureGFLOPs(size: Int = 1024, repeats: Int = 25) -> Double {
    let a = Tensor(shape: [size, size])
    let b = Tensor(shape: [size, size])
    let c = Tensor(shape: [size, size])
    for i in 0..<a.count {
      a.data[i] = Float(i % 7) * 0.1
      b.data[i] = Float(i % 5) * 0.1
    }
    sgemm(m: size, n: size, k: size, a: a.data, lda: size, b: b.data, ldb: size, c: c.data, ldc: size, precision: .fp32)
    var rates: [Double] = []
    for _ in 0..<repeats {
      let start = Clock.now()
      sgemm(m: size, n: size, k: size, a: a.data, lda: size, b: b.data, ldb: size, c: c.data, ldc: size, precision: .fp32)
      let seconds = Clock.now() - start
      rates.append(2 * Double(size * size * size) / seconds / 1e9)
    }
    return median(rates)
  }
}

public func median(_ values: [Double]) -> Double {
  if values.isEmpty { return .nan }
  let sorted = values.sorted()
  let mid = sorted.count / 2
  return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

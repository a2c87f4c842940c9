// The sgemm wrapper (row-major) over OpenBLAS, its thread control, and the sgemm ceiling probe.
import CBLAS

public enum BLAS {
  /// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, all row-major.
  @inlinable
  public static func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(
      CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
  }

  public static var threads: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(newValue)) }
  }

  /// Sets OpenBLAS's threads and the elementwise workers together.
  public static func setThreads(_ count: Int) {
    threads = count
    Parallel.workers = count
  }

  /// Measures square sgemm throughput (GFLOP/s, median of `repeats`) at size `size`: the
  /// ceiling the training step is compared with.
  public static func measureGFLOPs(size: Int = 1024, repeats: Int = 5) -> Double {
    let a = Tensor(shape: [size, size])
    let b = Tensor(shape: [size, size])
    let c = Tensor(shape: [size, size])
    for i in 0..<a.count {
      a.data[i] = Float(i % 7) * 0.1
      b.data[i] = Float(i % 5) * 0.1
    }
    sgemm(m: size, n: size, k: size, a: a.data, lda: size, b: b.data, ldb: size, c: c.data, ldc: size)
    var rates: [Double] = []
    for _ in 0..<repeats {
      let start = Clock.now()
      sgemm(m: size, n: size, k: size, a: a.data, lda: size, b: b.data, ldb: size, c: c.data, ldc: size)
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

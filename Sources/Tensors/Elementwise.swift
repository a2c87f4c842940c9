// Elementwise kernels and reductions over raw buffers, split over the workers.

public enum Elementwise {
  /// y += x
  public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forEach(count, grain: 1 << 15) { r in
      for i in r { y[i] += x[i] }
    }
  }

  /// y = a * x + y
  public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forEach(count, grain: 1 << 15) { r in
      for i in r { y[i] += a * x[i] }
    }
  }

  public static func zero(_ y: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forEach(count, grain: 1 << 16) { r in
      (y + r.lowerBound).update(repeating: 0, count: r.count)
    }
  }

  public static func maxAbs(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var m: Float = 0
    for i in 0..<count { m = max(m, abs(x[i])) }
    return m
  }

  public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
    var s: Double = 0
    for i in 0..<count { s += Double(x[i]) }
    return s
  }

  /// Largest |a - b| over the buffers.
  public static func maxAbsDifference(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var m: Float = 0
    for i in 0..<count { m = max(m, abs(a[i] - b[i])) }
    return m
  }
}

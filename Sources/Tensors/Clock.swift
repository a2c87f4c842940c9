// A monotonic clock in seconds, for timing steps and layers.
#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

public enum Clock {
  @inlinable
  public static func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
  }
}

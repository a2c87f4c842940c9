// SplitMix64: the seeded generator behind initialisation (identical on every rank and platform).

public struct SplitMix64: RandomNumberGenerator {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1).
  public mutating func uniform() -> Float {
    Float(next() >> 40) * (1.0 / Float(1 << 24))
  }

  /// Standard normal (Box-Muller).
  public mutating func normal() -> Float {
    let u1 = Double(next() >> 11) * (1.0 / Double(1 << 53))
    let u2 = Double(next() >> 11) * (1.0 / Double(1 << 53))
    let r = (-2 * log(max(u1, 1e-300))).squareRoot()
    return Float(r * cos(2 * Double.pi * u2))
  }
}

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

// SplitMix64, the seeded generator behind bootstrap resamples and synthetic benchmark data.

/// Small, fast and identical on every platform, so a seed names the same resamples everywhere.
struct SplitMix64: RandomNumberGenerator {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  /// A generator for stream `stream` of `seed`: each bootstrap resample gets its own stream, so
  /// its weights do not depend on how resamples are split over threads.
  init(seed: UInt64, stream: UInt64) {
    var mixer = SplitMix64(seed: seed ^ 0x5851_F42D_4C95_7F2D)
    state = mixer.next() ^ (stream &* 0xD134_2543_DE82_EF95)
  }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in 0..<bound by Lemire's multiply-shift: no division, and a bias below
  /// bound / 2^64, far below anything a bootstrap can see.
  mutating func index(below bound: Int) -> Int {
    Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
  }

  /// Uniform in [0, 1).
  mutating func uniform() -> Double {
    Double(next() >> 11) * (1.0 / Double(UInt64(1) << 53))
  }
}

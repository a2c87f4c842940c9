// SplitMix64: the one seeded generator of fairtune, behind initialisation, augmentation, synthetic
// data, search draws and bootstrap resamples. Small, fast and identical on every rank and platform,
// so that a seed names the same numbers everywhere.
import Foundation

public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  /// A generator for stream `stream` of `seed`: each bootstrap resample gets its own stream, so
  /// its draws do not depend on how resamples are split over threads.
  public init(seed: UInt64, stream: UInt64) {
    var mixer = SplitMix64(seed: seed ^ 0x5851_F42D_4C95_7F2D)
    state = mixer.next() ^ (stream &* 0xD134_2543_DE82_EF95)
  }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1), with Float's 24 bits.
  public mutating func uniform() -> Float {
    Float(next() >> 40) * (1.0 / Float(1 << 24))
  }

  /// Uniform in [0, 1), with Double's 53 bits.
  public mutating func uniformDouble() -> Double {
    Double(next() >> 11) * (1.0 / Double(UInt64(1) << 53))
  }

  /// Uniform in 0..<bound by Lemire's multiply-shift: no division, and a bias below
  /// bound / 2^64, far below anything a bootstrap can see.
  public mutating func index(below bound: Int) -> Int {
    Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
  }

  /// Standard normal (Box-Muller), in Double.
  public mutating func normalDouble() -> Double {
    let radius = (-2 * log(max(uniformDouble(), .leastNormalMagnitude))).squareRoot()
    return radius * cos(2 * Double.pi * uniformDouble())
  }

  /// Standard normal (Box-Muller), in Float.
  public mutating func normal() -> Float { Float(normalDouble()) }
}

// A global photometric shift of every pixel (contrast, brightness, a colour cast): the planted
// effect of docs/mechanism.md. Faces drawn under a shift and used only for pretraining give a
// backbone whose BatchNorm statistics are known to be wrong for the unshifted faces of
// fine-tuning, so that updating them must help.
import Foundation
import Support

/// value' = 0.5 + contrast x (value - 0.5) + brightness + cast x (+1, 0, -1) for (red, green,
/// blue) + noise x Z (Z standard normal, drawn per value from the image's seed), on values in
/// [0, 1], clamped to [0, 1].
public struct PhotometricShift: Sendable, Equatable, CustomStringConvertible {
  public var contrast: Double
  public var brightness: Double
  public var cast: Double
  public var noise: Double

  public init(contrast: Double = 1, brightness: Double = 0, cast: Double = 0, noise: Double = 0) {
    self.contrast = contrast
    self.brightness = brightness
    self.cast = cast
    self.noise = noise
  }

  /// No change.
  public static let none = PhotometricShift()
  /// The planted effect's shift: half the contrast, a fifth brighter, a warm cast.
  public static let strong = PhotometricShift(contrast: 0.5, brightness: 0.2, cast: 0.1)

  public var isIdentity: Bool { contrast == 1 && brightness == 0 && cast == 0 && noise == 0 }

  public var description: String {
    if isIdentity { return "none" }
    return "contrast=\(Self.number(contrast)),brightness=\(Self.number(brightness)),cast=\(Self.number(cast))"
      + (noise == 0 ? "" : ",noise=\(Self.number(noise))")
  }

  private static func number(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(value)
  }

  /// Parses `none`, `strong`, or `contrast=C,brightness=B,cast=K` (any subset, in any order;
  /// missing terms leave that part unchanged). The error says what was wrong.
  public init(parsing text: String) throws(ShiftSyntaxError) {
    switch text {
    case "none": self = .none
    case "strong": self = .strong
    default:
      self = .none
      for term in text.split(separator: ",", omittingEmptySubsequences: false) {
        let parts = term.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let value = Double(parts[1].trimmingCharacters(in: .whitespaces)), value.isFinite else {
          throw ShiftSyntaxError(text: text, problem: "'\(term)' is not NAME=NUMBER")
        }
        switch parts[0].trimmingCharacters(in: .whitespaces) {
        case "contrast":
          guard value > 0 && value <= 4 else { throw ShiftSyntaxError(text: text, problem: "contrast must be in (0, 4] (1 leaves it unchanged)") }
          contrast = value
        case "brightness":
          guard abs(value) <= 1 else { throw ShiftSyntaxError(text: text, problem: "brightness must be in [-1, 1] (0 leaves it unchanged)") }
          brightness = value
        case "cast":
          guard abs(value) <= 1 else { throw ShiftSyntaxError(text: text, problem: "cast must be in [-1, 1] (0 leaves it unchanged)") }
          cast = value
        case "noise":
          guard value >= 0 && value <= 1 else { throw ShiftSyntaxError(text: text, problem: "noise must be in [0, 1] (0 adds none)") }
          noise = value
        default:
          throw ShiftSyntaxError(text: text, problem: "'\(parts[0])' is not contrast, brightness, cast or noise")
        }
      }
    }
  }

  /// The shifted image (the same image when the shift is the identity); `seed` draws the noise.
  public func apply(to image: RGBImage, seed: UInt64 = 0) -> RGBImage {
    if isIdentity { return image }
    // One lookup table per channel: the shift is a function of the value alone.
    var tables = [[UInt8]](repeating: [UInt8](repeating: 0, count: 256), count: 3)
    for channel in 0..<3 {
      let offset = brightness + cast * Double(1 - channel)
      for value in 0..<256 {
        let shifted = 0.5 + contrast * (Double(value) / 255 - 0.5) + offset
        tables[channel][value] = UInt8((min(max(shifted, 0), 1) * 255).rounded())
      }
    }
    var out = image
    if noise == 0 {
      for index in out.pixels.indices {
        out.pixels[index] = tables[index % 3][Int(out.pixels[index])]
      }
      return out
    }
    var rng = SplitMix64(seed: seed, stream: 0x6E6F_6973)
    for index in out.pixels.indices {
      let offset = brightness + cast * Double(1 - index % 3)
      let shifted = 0.5 + contrast * (Double(out.pixels[index]) / 255 - 0.5) + offset + noise * rng.normalDouble()
      out.pixels[index] = UInt8((min(max(shifted, 0), 1) * 255).rounded())
    }
    return out
  }
}

public struct ShiftSyntaxError: Error, CustomStringConvertible {
  public let text: String
  public let problem: String
  public var description: String {
    "'\(text)' is not a photometric shift: \(problem). Write none, strong, or contrast=C,brightness=B,cast=K,noise=N (e.g. contrast=0.5,brightness=0.2,cast=0.1)."
  }
}

// The arithmetic of the products: fp32, or bfloat16 operands with fp32 accumulation (PyTorch's
// autocast rule for convolutions and linear layers). bfloat16 is a float32 with the low 16 bits
// of the significand dropped: 8 exponent bits (fp32's range), 8 significand bits (7 stored), a
// unit roundoff of 2^-8. Until fairtune has bfloat16 kernels tested on a CPU that has them, bf16
// runs emulated: each operand is rounded to bfloat16 (to nearest, ties to even) into fp32
// storage, and the fp32 GEMM multiplies the rounded values. The products of two bfloat16 values
// are exact in fp32 (8 + 8 significand bits), so the emulation differs from a bfloat16 dot-product
// instruction only in the order of the fp32 additions.
import Foundation

/// What GEMMs multiply.
public enum Precision: String, CaseIterable, Sendable {
  /// fp32 operands and accumulation.
  case fp32
  /// bfloat16 operands (rounded from the fp32 values), fp32 accumulation, emulated in fp32 code.
  case bf16Emulated = "bf16-emulated"

  /// Words for messages and records.
  public var summary: String {
    switch self {
    case .fp32: return "fp32"
    case .bf16Emulated: return "bf16 emulated (operands rounded to bfloat16, fp32 products and sums)"
    }
  }
}

public enum BFloat16 {
  /// The unit roundoff of bfloat16: the largest relative error of rounding a normal value.
  public static let unitRoundoff: Float = 1.0 / 256

  /// `x` rounded to the nearest bfloat16 (ties to even), as a Float. Infinities stay; a NaN stays
  /// a (quiet) NaN of the same sign; values beyond the largest bfloat16 round to infinity, as a
  /// conversion instruction does.
  @inlinable
  public static func rounded(_ x: Float) -> Float {
    let bits = x.bitPattern
    if x.isNaN { return Float(bitPattern: (bits | 0x0040_0000) & 0xFFFF_0000) }
    let tieBreak = (bits >> 16) & 1
    return Float(bitPattern: (bits &+ 0x7FFF &+ tieBreak) & 0xFFFF_0000)
  }

  /// `count` values rounded in place, split over the workers.
  public static func round(_ values: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forEach(count, grain: 1 << 14) { range in
      for i in range { values[i] = rounded(values[i]) }
    }
  }

  /// A [rows, columns] matrix of row stride `ld` rounded into `out`, packed (row stride
  /// `columns`); split over the workers when `parallel` (not from inside a parallel loop).
  public static func round(
    _ matrix: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int, into out: UnsafeMutablePointer<Float>, parallel: Bool = true
  ) {
    func part(_ range: Range<Int>) {
      for r in range {
        let from = matrix + r * ld
        let to = out + r * columns
        for c in 0..<columns { to[c] = rounded(from[c]) }
      }
    }
    if parallel {
      Parallel.forEach(rows, grain: max(1, (1 << 14) / max(columns, 1))) { part($0) }
    } else {
      part(0..<rows)
    }
  }
}

/// What this CPU can do, from the kernel's CPU flags (Linux's /proc/cpuinfo, which reports what
/// CPUID says and the kernel enables).
public enum CPU {
  /// The first processor's flags.
  public static let flags: Set<String> = {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
      let colon = line.firstIndex(of: ":")
    else { return [] }
    return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
  }()

  /// The first processor's model name.
  public static let model: String = {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
      let colon = line.firstIndex(of: ":")
    else { return "an unknown CPU" }
    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
  }()

  /// bfloat16 dot products (`vdpbf16ps`, AVX512_BF16: Intel since Cooper Lake, AMD since Zen 4).
  public static var hasAVX512BF16: Bool { flags.contains("avx512_bf16") }
  /// AMX bfloat16 tiles (Intel since Sapphire Rapids).
  public static var hasAMXBF16: Bool { flags.contains("amx_bf16") }
}

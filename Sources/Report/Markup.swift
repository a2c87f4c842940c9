// Escaping and number formatting shared by the Markdown, CSV, SVG and HTML writers.
import Foundation

/// Text safe inside XML/HTML element content and attribute values.
func escapedXML(_ text: String) -> String {
  var result = ""
  for character in text {
    switch character {
    case "&": result += "&amp;"
    case "<": result += "&lt;"
    case ">": result += "&gt;"
    case "\"": result += "&quot;"
    case "'": result += "&apos;"
    default: result.append(character)
    }
  }
  return result
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
func csvField(_ text: String) -> String {
  guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
  return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// A metric with three decimals, or "n/a" when it does not exist.
func formatted(_ value: Double?, decimals: Int = 3) -> String {
  guard let value else { return "n/a" }
  return String(format: "%.\(decimals)f", value)
}

/// An integer with thousands separators, e.g. 23,508,032.
func grouped(_ value: Int) -> String {
  let digits = String(value.magnitude)
  var result = ""
  for (offset, digit) in digits.enumerated() {
    if offset > 0 && (digits.count - offset) % 3 == 0 { result += "," }
    result.append(digit)
  }
  return value < 0 ? "-" + result : result
}

/// An upper estimate of the width of `text` in a sans-serif font of `size` px: per-character
/// advances of DejaVu Sans, the widest of the common default sans-serif fonts, rounded up, so
/// that a label laid out by this estimate also fits in a narrower font. The browser check
/// (scripts/check_report_page.sh) measures the real text.
func estimatedTextWidth(_ text: String, size: Double) -> Double {
  var ems = 0.0
  for character in text {
    switch character {
    case "i", "j", "l", "f", "t", ".", ",", ":", ";", "'", "!", "|", "/", " ": ems += 0.40
    case "r", "-", "(", ")", "[", "]": ems += 0.44
    case "m", "M", "W": ems += 1.0
    case "w": ems += 0.83
    default: ems += character.isUppercase ? 0.78 : 0.65
    }
  }
  return ems * size
}

/// `text` at the largest font size from `size` down to `minimum` that fits in `width`, cut short
/// with "…" when even `minimum` does not; `shortened` says whether it was.
func fittedText(_ text: String, width: Double, size: Double, minimum: Double) -> (text: String, size: Double, shortened: Bool) {
  var fontSize = size
  while fontSize > minimum && estimatedTextWidth(text, size: fontSize) > width { fontSize -= 0.5 }
  let cut = shortened(text, width: width, size: fontSize)
  return (cut, fontSize, cut != text)
}

/// `text`, or as much of its start as fits in `width` at `size` followed by "…".
func shortened(_ text: String, width: Double, size: Double) -> String {
  guard estimatedTextWidth(text, size: size) > width else { return text }
  var kept = Substring(text)
  while !kept.isEmpty && estimatedTextWidth(String(kept) + "…", size: size) > width { kept = kept.dropLast() }
  return kept.trimmingCharacters(in: .whitespaces) + "…"
}

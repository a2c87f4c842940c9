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

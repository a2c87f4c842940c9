// A text file read once as bytes and walked line by line, for the fast, line-numbered readers.
import Foundation

/// The bytes of a text file and its display name. A NUL byte is appended so that `strtod` can
/// read a number at the end of the last line without running past the buffer.
package struct TextFile {
  package let name: String
  package let bytes: [UInt8]

  package init(name: String, bytes: [UInt8]) {
    self.name = name
    self.bytes = bytes + [0]
  }

  package init(contentsOf url: URL) throws {
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw InputError(file: url.path, line: nil, "cannot be read (\(error.localizedDescription)); check the path.")
    }
    self.init(name: url.path, bytes: [UInt8](data))
  }

  /// Calls `body` with each line's 1-based number and byte range, without the line break
  /// (`\n` or `\r\n`). A final line without a break counts; the empty text after a final break
  /// does not.
  package func forEachLine(_ body: (_ number: Int, _ range: Range<Int>) throws -> Void) rethrows {
    let end = bytes.count - 1
    var start = 0
    var number = 1
    while start < end {
      var stop = start
      while stop < end && bytes[stop] != UInt8(ascii: "\n") { stop += 1 }
      var contentEnd = stop
      if contentEnd > start && bytes[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
      try body(number, start..<contentEnd)
      number += 1
      start = stop + 1
    }
  }

  package func string(_ range: Range<Int>) -> String {
    String(decoding: bytes[range], as: UTF8.self)
  }

  /// The field as it should appear in a message: control characters as '?', and cut after 40
  /// characters, so that a binary file passed by mistake gives a readable error.
  package func excerpt(_ range: Range<Int>) -> String {
    let text = String(string(range).map { $0.isASCII && ($0.asciiValue ?? 0) < 0x20 ? "?" : $0 })
    return text.count > 40 ? String(text.prefix(40)) + "..." : text
  }

  package func isBlank(_ range: Range<Int>) -> Bool {
    range.allSatisfy { bytes[$0] == UInt8(ascii: " ") || bytes[$0] == UInt8(ascii: "\t") }
  }

  /// The ranges of the fields of `range` separated by runs of spaces and tabs.
  package func whitespaceFields(_ range: Range<Int>) -> [Range<Int>] {
    var fields: [Range<Int>] = []
    var index = range.lowerBound
    while index < range.upperBound {
      while index < range.upperBound && isSpace(bytes[index]) { index += 1 }
      let start = index
      while index < range.upperBound && !isSpace(bytes[index]) { index += 1 }
      if index > start { fields.append(start..<index) }
    }
    return fields
  }

  /// The ranges of the fields of `range` separated by `separator`, each trimmed of spaces and
  /// tabs; `a,,b` has an empty middle field.
  package func separatedFields(_ range: Range<Int>, by separator: UInt8) -> [Range<Int>] {
    var fields: [Range<Int>] = []
    var start = range.lowerBound
    var index = start
    while true {
      if index == range.upperBound || bytes[index] == separator {
        var low = start
        var high = index
        while low < high && isSpace(bytes[low]) { low += 1 }
        while high > low && isSpace(bytes[high - 1]) { high -= 1 }
        fields.append(low..<high)
        if index == range.upperBound { break }
        start = index + 1
      }
      index += 1
    }
    return fields
  }

  /// The field read as a finite or non-finite Double, or nil when it is not a number.
  package func double(_ field: Range<Int>) -> Double? {
    guard !field.isEmpty else { return nil }
    return bytes.withUnsafeBufferPointer { buffer -> Double? in
      let start = UnsafeMutablePointer(mutating: buffer.baseAddress! + field.lowerBound)
      var stop: UnsafeMutablePointer<CChar>? = nil
      let value = start.withMemoryRebound(to: CChar.self, capacity: field.count) { strtod($0, &stop) }
      let consumed = stop.map { UnsafeMutableRawPointer($0) - UnsafeMutableRawPointer(start) } ?? 0
      return consumed == field.count ? value : nil
    }
  }

  /// The field read as a decimal integer with an optional sign, or nil.
  package func integer(_ field: Range<Int>) -> Int? {
    guard !field.isEmpty else { return nil }
    var index = field.lowerBound
    var negative = false
    if bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
      negative = bytes[index] == UInt8(ascii: "-")
      index += 1
    }
    guard index < field.upperBound, field.upperBound - index <= 18 else { return nil }
    var value = 0
    while index < field.upperBound {
      let digit = Int(bytes[index]) - Int(UInt8(ascii: "0"))
      guard (0...9).contains(digit) else { return nil }
      value = value * 10 + digit
      index += 1
    }
    return negative ? -value : value
  }

  private func isSpace(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
  }
}

// The error for input files that cannot be used: it names the file, the line and what to fix.

/// A problem with an input file, reported as `file:line: message` so the user can open the file
/// at the right place. `line` is 1-based; nil when the problem concerns the file as a whole.
public struct InputError: Error, Equatable, CustomStringConvertible {
  public let file: String
  public let line: Int?
  public let message: String

  public init(file: String, line: Int?, _ message: String) {
    self.file = file
    self.line = line
    self.message = message
  }

  public var description: String {
    if let line { return "\(file):\(line): \(message)" }
    return "\(file): \(message)"
  }
}

// Reader for a model's scores: a CSV with a header `image,<attribute names>` and a row per image.
import CelebAFormat
import Foundation

/// One score per image and attribute: logits or probabilities, anything where a higher score
/// means "more likely present". Every score must be a finite number.
public struct ScoreTable {
  public let file: String
  public let names: [String]
  /// The line of the header.
  public let headerLine: Int
  public let images: [String]
  /// `scores[image * names.count + attribute]`.
  public let scores: [Double]
  /// The line each image was read from.
  public let lines: [Int]
  public let imageIndex: [String: Int]

  public init(contentsOf url: URL) throws {
    try self.init(TextFile(contentsOf: url))
  }

  public init(name: String, text: String) throws {
    try self.init(TextFile(name: name, bytes: Array(text.utf8)))
  }

  package init(_ file: TextFile) throws {
    var names: [String] = []
    var images: [String] = []
    var scores: [Double] = []
    var lines: [Int] = []
    var imageIndex: [String: Int] = [:]
    var headerLine: Int?
    try file.forEachLine { number, range in
      if file.isBlank(range) { return }
      let fields = file.separatedFields(range, by: UInt8(ascii: ","))
      if headerLine == nil {
        guard fields.count >= 2, file.string(fields[0]) == "image" else {
          throw InputError(
            file: file.name, line: number,
            "the header should be `image,` followed by the attribute names, but starts with '\(file.excerpt(fields[0]))'."
          )
        }
        names = fields.dropFirst().map(file.string)
        if let empty = names.firstIndex(of: "") {
          throw InputError(file: file.name, line: number, "header column \(empty + 2) has no attribute name.")
        }
        headerLine = number
        return
      }
      guard fields.count == names.count + 1 else {
        throw InputError(
          file: file.name, line: number,
          "has \(fields.count - 1) scores after the image name; the header names \(names.count) attributes.")
      }
      let image = file.string(fields[0])
      guard !image.isEmpty else {
        throw InputError(file: file.name, line: number, "has no image name in its first column.")
      }
      if let first = imageIndex[image] {
        throw InputError(file: file.name, line: number, "repeats image \(image), already on line \(lines[first]).")
      }
      for (column, field) in fields.dropFirst().enumerated() {
        guard let value = file.double(field) else {
          throw InputError(
            file: file.name, line: number,
            "score '\(file.excerpt(field))' for \(names[column]) of \(image) is not a number.")
        }
        guard value.isFinite else {
          throw InputError(
            file: file.name, line: number,
            "score for \(names[column]) of \(image) is \(value); every score must be a finite number.")
        }
        scores.append(value)
      }
      imageIndex[image] = images.count
      images.append(image)
      lines.append(number)
    }
    guard let headerLine else {
      throw InputError(
        file: file.name, line: nil, "is empty; it needs a header `image,<attribute names>` and a row per image.")
    }
    self.file = file.name
    self.names = names
    self.headerLine = headerLine
    self.images = images
    self.scores = scores
    self.lines = lines
    self.imageIndex = imageIndex
  }
}

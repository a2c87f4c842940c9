// Readers for CelebA's label files: list_attr_celeba.txt (attributes) and list_eval_partition.txt.
import Foundation

/// The attribute file: an optional first line with the number of images, a line with the
/// attribute names, then one line per image, `NAME v1 ... vK`, where 1 means the attribute is
/// present and -1 (or 0) that it is absent. Fields are separated by spaces or tabs.
///
/// The count line is not checked against the rows, so that the first rows of the file, cut
/// with `head`, are still a valid file.
public struct CelebAAttributes {
  public let file: String
  public let names: [String]
  /// The line of the attribute names.
  public let headerLine: Int
  public let images: [String]
  /// `labels[image * names.count + attribute]`.
  public let labels: [Bool]
  /// The line each image was read from.
  public let lines: [Int]
  public let imageIndex: [String: Int]

  public init(contentsOf url: URL) throws {
    try self.init(TextFile(contentsOf: url))
  }

  public init(name: String, text: String) throws {
    try self.init(TextFile(name: name, bytes: Array(text.utf8)))
  }

  init(_ file: TextFile) throws {
    var names: [String] = []
    var images: [String] = []
    var labels: [Bool] = []
    var lines: [Int] = []
    var imageIndex: [String: Int] = [:]
    var headerLine: Int?
    try file.forEachLine { number, range in
      if file.isBlank(range) { return }
      let fields = file.whitespaceFields(range)
      if headerLine == nil {
        if names.isEmpty && number == 1 && fields.count == 1 && file.integer(fields[0]) != nil { return }
        names = fields.map(file.string)
        try Self.checkNames(names, file: file.name, line: number)
        headerLine = number
        return
      }
      guard fields.count == names.count + 1 else {
        throw InputError(
          file: file.name, line: number,
          "has \(fields.count - 1) values after the image name; the header names \(names.count) attributes.")
      }
      let image = file.string(fields[0])
      if let first = imageIndex[image] {
        throw InputError(file: file.name, line: number, "repeats image \(image), already on line \(lines[first]).")
      }
      for (column, field) in fields.dropFirst().enumerated() {
        switch file.integer(field) {
        case 1: labels.append(true)
        case -1, 0: labels.append(false)
        default:
          throw InputError(
            file: file.name, line: number,
            "value '\(file.excerpt(field))' for \(names[column]) of \(image) is not 1, -1 or 0.")
        }
      }
      imageIndex[image] = images.count
      images.append(image)
      lines.append(number)
    }
    guard let headerLine else {
      throw InputError(file: file.name, line: nil, "has no header line with attribute names.")
    }
    self.file = file.name
    self.names = names
    self.headerLine = headerLine
    self.images = images
    self.labels = labels
    self.lines = lines
    self.imageIndex = imageIndex
  }

  private static func checkNames(_ names: [String], file: String, line: Int) throws {
    var seen = Set<String>()
    for name in names {
      guard seen.insert(name).inserted else {
        throw InputError(file: file, line: line, "names attribute \(name) twice.")
      }
    }
  }
}

/// The three splits of CelebA's list_eval_partition.txt.
public enum CelebASplit: Int, Sendable {
  case train = 0
  case validation = 1
  case test = 2
}

/// The partition file: one line per image, `NAME SPLIT` with SPLIT 0 (train), 1 (validation)
/// or 2 (test).
public struct CelebAPartition {
  public let file: String
  public let images: [String]
  public let splits: [CelebASplit]
  /// The line each image was read from.
  public let lines: [Int]

  public init(contentsOf url: URL) throws {
    try self.init(TextFile(contentsOf: url))
  }

  public init(name: String, text: String) throws {
    try self.init(TextFile(name: name, bytes: Array(text.utf8)))
  }

  init(_ file: TextFile) throws {
    var images: [String] = []
    var splits: [CelebASplit] = []
    var lines: [Int] = []
    var seen: [String: Int] = [:]
    try file.forEachLine { number, range in
      if file.isBlank(range) { return }
      let fields = file.whitespaceFields(range)
      guard fields.count == 2 else {
        throw InputError(
          file: file.name, line: number, "should be `IMAGE SPLIT` (two fields), but has \(fields.count).")
      }
      let image = file.string(fields[0])
      guard let code = file.integer(fields[1]), let split = CelebASplit(rawValue: code) else {
        throw InputError(
          file: file.name, line: number,
          "split '\(file.excerpt(fields[1]))' of \(image) is not 0 (train), 1 (validation) or 2 (test).")
      }
      if let first = seen[image] {
        throw InputError(file: file.name, line: number, "repeats image \(image), already on line \(first).")
      }
      seen[image] = number
      images.append(image)
      splits.append(split)
      lines.append(number)
    }
    self.file = file.name
    self.images = images
    self.splits = splits
    self.lines = lines
  }
}

extension CelebAAttributes {
  /// The commands report CelebA's Table 1, so they need CelebA's 40 attributes; the metrics
  /// themselves work for any number.
  public func checkCelebAAttributeCount() throws {
    guard names.count == CelebA.attributeNames.count else {
      throw InputError(
        file: file, line: headerLine,
        "names \(names.count) attributes; CelebA's format has \(CelebA.attributeNames.count) (5_o_Clock_Shadow ... Young)."
      )
    }
  }
}

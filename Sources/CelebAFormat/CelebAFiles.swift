// Readers for CelebA's label files: list_attr_celeba.txt (attributes) and list_eval_partition.txt.
import Foundation

/// The attribute file: an optional first line with the number of images, a line with the
/// attribute names, then one line per image, `NAME v1 ... vK`, where 1 means the attribute is
/// present and -1 (or 0) that it is absent. Fields are separated by spaces or tabs.
///
/// By default the count line is optional and not checked against the rows, so that the first
/// rows of the file, cut with `head`, are still a valid file for the fairness metrics. A
/// dataset read for training is read with `strict: true`: CelebA's published layout exactly.
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

  /// With `strict`, the file must be CelebA's layout exactly: the count line first and equal to
  /// the number of rows, CelebA's 40 attribute names in order, values 1 or -1 only, and image
  /// names that are plain file names.
  public init(contentsOf url: URL, strict: Bool = false) throws {
    try self.init(TextFile(contentsOf: url), strict: strict)
  }

  public init(name: String, text: String, strict: Bool = false) throws {
    try self.init(TextFile(name: name, bytes: Array(text.utf8)), strict: strict)
  }

  package init(_ file: TextFile, strict: Bool = false) throws {
    var count: (value: Int, line: Int)?
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
        if count == nil && number == 1 && fields.count == 1, let value = file.integer(fields[0]) {
          count = (value, number)
          return
        }
        if strict && count == nil {
          throw InputError(
            file: file.name, line: number,
            "should hold the number of images (the first line of CelebA's list_attr_celeba.txt), but has '\(file.excerpt(range))'; add the count line."
          )
        }
        names = fields.map(file.string)
        try Self.checkNames(names, file: file.name, line: number, celebAOrder: strict)
        headerLine = number
        return
      }
      guard fields.count == names.count + 1 else {
        throw InputError(
          file: file.name, line: number,
          "has \(fields.count - 1) values after the image name; the header names \(names.count) attributes.")
      }
      let image = file.string(fields[0])
      if strict { try checkImageName(image, file: file, line: number) }
      if let first = imageIndex[image] {
        throw InputError(file: file.name, line: number, "repeats image \(image), already on line \(lines[first]).")
      }
      for (column, field) in fields.dropFirst().enumerated() {
        switch file.integer(field) {
        case 1: labels.append(true)
        case -1: labels.append(false)
        case 0 where !strict: labels.append(false)
        default:
          throw InputError(
            file: file.name, line: number,
            "value '\(file.excerpt(field))' for \(names[column]) of \(image) is not \(strict ? "1 or -1" : "1, -1 or 0")."
          )
        }
      }
      imageIndex[image] = images.count
      images.append(image)
      lines.append(number)
    }
    guard let headerLine else {
      throw InputError(file: file.name, line: nil, "has no header line with attribute names.")
    }
    if strict, let count, count.value != images.count {
      throw InputError(
        file: file.name, line: count.line,
        "says \(count.value) images but the file has \(images.count) rows; restore the missing rows or correct the count."
      )
    }
    self.file = file.name
    self.names = names
    self.headerLine = headerLine
    self.images = images
    self.labels = labels
    self.lines = lines
    self.imageIndex = imageIndex
  }

  private static func checkNames(_ names: [String], file: String, line: Int, celebAOrder: Bool) throws {
    var seen = Set<String>()
    for name in names {
      guard seen.insert(name).inserted else {
        throw InputError(file: file, line: line, "names attribute \(name) twice.")
      }
    }
    guard celebAOrder, names != CelebA.attributeNames else { return }
    guard names.count == CelebA.attributeCount else {
      throw InputError(
        file: file, line: line,
        "names \(names.count) attributes; CelebA's format has \(CelebA.attributeCount) (5_o_Clock_Shadow ... Young), in list_attr_celeba.txt's order."
      )
    }
    let column = zip(names, CelebA.attributeNames).enumerated().first { $0.element.0 != $0.element.1 }!.offset
    throw InputError(
      file: file, line: line,
      "attribute \(column + 1) is '\(names[column])' where CelebA has '\(CelebA.attributeNames[column])'; the 40 names must be CelebA's, in list_attr_celeba.txt's order."
    )
  }
}

/// Image names become paths under img_align_celeba/, so a dataset's names must be plain file
/// names: a name with a slash or a `..` would read or write outside the image folder.
private func checkImageName(_ image: String, file: TextFile, line: Int) throws {
  if image == "." || image == ".." || image.contains("/") || image.contains("\\") {
    throw InputError(
      file: file.name, line: line,
      "image name '\(image)' is not a plain file name; names must be files directly in img_align_celeba/ (e.g. 000001.jpg)."
    )
  }
}

/// The three splits of CelebA's list_eval_partition.txt.
public enum CelebASplit: Int, Sendable, CaseIterable {
  case train = 0
  case validation = 1
  case test = 2

  public var name: String {
    switch self {
    case .train: "train"
    case .validation: "validation"
    case .test: "test"
    }
  }
}

/// The partition file: one line per image, `NAME SPLIT` with SPLIT 0 (train), 1 (validation)
/// or 2 (test).
public struct CelebAPartition {
  public let file: String
  public let images: [String]
  public let splits: [CelebASplit]
  /// The line each image was read from.
  public let lines: [Int]

  /// With `strict`, image names must be plain file names (they become paths of images).
  public init(contentsOf url: URL, strict: Bool = false) throws {
    try self.init(TextFile(contentsOf: url), strict: strict)
  }

  public init(name: String, text: String, strict: Bool = false) throws {
    try self.init(TextFile(name: name, bytes: Array(text.utf8)), strict: strict)
  }

  package init(_ file: TextFile, strict: Bool = false) throws {
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
      if strict { try checkImageName(image, file: file, line: number) }
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

/// A dataset's attribute and partition files read together in CelebA's strict layout, with
/// every image in both: the order of the images is the attribute file's.
public struct CelebAListing {
  public let attributes: CelebAAttributes
  public let partition: CelebAPartition
  /// `splits[image]`, for the images in attribute-file order.
  public let splits: [CelebASplit]

  public var images: [String] { attributes.images }

  public init(attributes: CelebAAttributes, partition: CelebAPartition) throws {
    for (entry, image) in partition.images.enumerated() where attributes.imageIndex[image] == nil {
      throw InputError(
        file: partition.file, line: partition.lines[entry],
        "puts image \(image) in a split, but \(attributes.file) has no labels for it; add its row there or remove this line."
      )
    }
    var splits = [CelebASplit?](repeating: nil, count: attributes.images.count)
    for (entry, image) in partition.images.enumerated() {
      splits[attributes.imageIndex[image]!] = partition.splits[entry]
    }
    if let missing = splits.firstIndex(where: { $0 == nil }) {
      throw InputError(
        file: attributes.file, line: attributes.lines[missing],
        "image \(attributes.images[missing]) is in no split: \(partition.file) has no line for it; add `\(attributes.images[missing]) 0` (train), 1 (validation) or 2 (test) there."
      )
    }
    self.attributes = attributes
    self.partition = partition
    self.splits = splits.map { $0! }
  }

  /// Reads DIR/list_attr_celeba.txt and DIR/list_eval_partition.txt strictly.
  public init(directory: URL) throws {
    try self.init(
      attributes: CelebAAttributes(
        contentsOf: directory.appendingPathComponent(CelebAListing.attributeFile), strict: true),
      partition: CelebAPartition(
        contentsOf: directory.appendingPathComponent(CelebAListing.partitionFile), strict: true))
  }

  public static let attributeFile = "list_attr_celeba.txt"
  public static let partitionFile = "list_eval_partition.txt"
  public static let imageFolder = "img_align_celeba"
}

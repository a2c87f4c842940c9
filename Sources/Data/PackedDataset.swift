// PackedDataset: a packed dataset mapped into memory, with its labels, splits and image names.
import CelebAFormat
import Foundation
import Tensors

/// Opens the files `fairtune pack` writes; images are read straight from the mapped shards,
/// so opening costs no copy and several processes on one node share the page cache.
public final class PackedDataset: @unchecked Sendable {
  public static let labelFile = "labels.bin"
  public static let namesFile = "images.txt"
  static func shardFile(_ index: Int) -> String { String(format: "images-%03d.bin", index) }

  public let path: URL
  public let imageSize: Int
  public let count: Int
  public let attributeCount: Int
  /// The source file name of each image.
  public let imageNames: [String]
  /// The split of each image.
  public let splits: [CelebASplit]
  private let shards: [MappedFile]
  private let imagesPerShard: Int
  private let labelFile: MappedFile

  public var imageBytes: Int { imageSize * imageSize * 3 }

  /// Opens DIR; with `verify` every file's checksum is checked (in parallel; about a second
  /// per few gigabytes).
  public init(path: URL, verify: Bool = true) throws {
    self.path = path
    let labelPath = path.appendingPathComponent(Self.labelFile).path
    guard FileManager.default.fileExists(atPath: labelPath) else {
      throw PackError(
        path.path,
        "has no \(Self.labelFile): it is not a packed dataset; run `fairtune pack --celeba DIR --image-size S --out \(path.path)` first."
      )
    }
    labelFile = try MappedFile(labelPath)
    let labels = try PackedHeader(labelFile.bytes, file: labelPath)
    guard labels.kind == .labels else { throw PackError(labelPath, "is not a label file; pack the dataset again.") }
    count = labels.count
    attributeCount = labels.width
    // Every shard but the last holds the same number of images: image i is in shard
    // i / perShard, and a shard that breaks this would send reads to the wrong place.
    var shards: [MappedFile] = []
    var seen = 0
    var size = 0
    var perShard = 0
    while seen < count {
      let file = path.appendingPathComponent(Self.shardFile(shards.count)).path
      guard FileManager.default.fileExists(atPath: file) else {
        throw PackError(
          file, "is missing: the labels describe \(count) images but the shards hold \(seen); pack the dataset again.")
      }
      let shard = try MappedFile(file)
      let header = try PackedHeader(shard.bytes, file: file)
      if shards.isEmpty {
        size = header.height
        perShard = header.count
      }
      guard header.kind == .images, header.first == seen, header.count > 0, header.channels == 3, size > 0,
        header.height == size, header.width == size, header.count <= perShard,
        shards.count < 1 || seen == shards.count * perShard
      else {
        throw PackError(
          file,
          "does not continue the previous shards (first image \(header.first) of \(header.count), expected \(seen) of up to \(perShard) at \(size)x\(size)); pack the dataset again."
        )
      }
      shards.append(shard)
      seen += header.count
    }
    guard seen == count else {
      throw PackError(path.path, "shards hold \(seen) images but the labels describe \(count); pack the dataset again.")
    }
    self.shards = shards
    imageSize = size
    imagesPerShard = max(perShard, 1)
    let payload = UnsafeRawBufferPointer(rebasing: labelFile.bytes[PackedHeader.size...])
    let codes = payload[(labels.count * labels.width)...]
    splits = try codes.enumerated().map { image, code in
      guard let split = CelebASplit(rawValue: Int(code)) else {
        throw PackError(labelPath, "has split code \(code) for image \(image); pack the dataset again.")
      }
      return split
    }
    let namesPath = path.appendingPathComponent(Self.namesFile)
    let names = (try? String(contentsOf: namesPath, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
    guard names.count == count else {
      throw PackError(namesPath.path, "lists \(names.count) image names for \(count) images; pack the dataset again.")
    }
    imageNames = names
    if verify { try self.verify() }
  }

  /// Checks every file's payload against the checksum in its header.
  public func verify() throws {
    let files = [labelFile] + shards
    let failure = FirstError()
    Parallel.forEach(files.count) { range in
      for file in files[range] {
        let payload = UnsafeRawBufferPointer(rebasing: file.bytes[PackedHeader.size...])
        let stored = file.bytes.loadUnaligned(fromByteOffset: 48, as: UInt64.self)
        if PackedChecksum.of(payload) != UInt64(littleEndian: stored) {
          failure.record(
            PackError(
              file.path, "fails its checksum: the file was changed or damaged after packing; pack the dataset again."))
        }
      }
    }
    if let error = failure.error { throw error }
  }

  /// The `imageSize * imageSize * 3` bytes of image `index`.
  @inline(__always)
  public func pixels(_ index: Int) -> UnsafePointer<UInt8> {
    let shard = shards[index / imagesPerShard]
    let offset = PackedHeader.size + (index % imagesPerShard) * imageBytes
    return (shard.bytes.baseAddress! + offset).assumingMemoryBound(to: UInt8.self)
  }

  /// The `attributeCount` labels (0 or 1) of image `index`.
  @inline(__always)
  public func labels(_ index: Int) -> UnsafePointer<UInt8> {
    (labelFile.bytes.baseAddress! + PackedHeader.size + index * attributeCount).assumingMemoryBound(to: UInt8.self)
  }

  /// The images of one split, in file order.
  public func indices(of split: CelebASplit) -> [Int] { (0..<count).filter { splits[$0] == split } }

  public var train: [Int] { indices(of: .train) }
  public var validation: [Int] { indices(of: .validation) }
  public var test: [Int] { indices(of: .test) }
}

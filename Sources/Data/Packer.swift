// `fairtune pack`: decode a CelebA-format folder once, crop and resize, write packed shards.
import CelebAFormat
import Foundation
import Tensors

/// What a pack did: images written, images left out (with why), and the time it took.
public struct PackReport: Sendable {
  public var packed = 0
  public var perSplit: [Int] = [0, 0, 0]
  public var skipped: [(image: String, reason: String)] = []
  public var seconds = 0.0
}

public enum Packer {
  /// Shards hold at most this many bytes of pixels, so no single file grows past a gigabyte.
  static let shardBytes = 1 << 30

  /// Packs the dataset at `celebA` (read strictly: list_attr_celeba.txt, list_eval_partition.txt,
  /// img_align_celeba/) into `output`: each image decoded, cropped to its centred square
  /// (178x178 for CelebA's 178x218) and resized to `imageSize` with the antialiased bilinear
  /// filter. A missing or undecodable image is an error naming it, unless `skipBadImages`,
  /// which leaves it (and its labels) out and reports it.
  public static func pack(
    celebA directory: URL, imageSize: Int, into output: OutputDirectory, skipBadImages: Bool,
    progress: (Int) -> Void = { _ in }
  ) throws -> PackReport {
    let start = Clock.now()
    let listing = try CelebAListing(directory: directory)
    let folder = directory.appendingPathComponent(CelebAListing.imageFolder)
    let images = listing.images
    let imageBytes = imageSize * imageSize * 3
    let perShard = max(1, shardBytes / imageBytes)
    let attributeCount = listing.attributes.names.count
    var report = PackReport()
    var names: [String] = []
    var labels: [UInt8] = []
    var splits: [UInt8] = []
    var shard: FileHandle?
    var shardCount = 0
    var shardIndex = 0
    var shardFirst = 0

    func closeShard() throws {
      guard let handle = shard else { return }
      try output.guarded(PackedDataset.shardFile(shardIndex)) { try handle.close() }
      shard = nil
      let url = output.file(PackedDataset.shardFile(shardIndex))
      let mapped = try MappedFile(url.path)
      let checksum = PackedChecksum.of(UnsafeRawBufferPointer(rebasing: mapped.bytes[PackedHeader.size...]))
      let header = PackedHeader(
        kind: .images, height: imageSize, width: imageSize, channels: 3, count: shardCount, first: shardFirst,
        payloadBytes: shardCount * imageBytes, checksum: checksum)
      try output.guarded(url.lastPathComponent) {
        let patch = try FileHandle(forWritingTo: url)
        try patch.write(contentsOf: header.bytes)
        try patch.close()
      }
      shardIndex += 1
      shardFirst += shardCount
      shardCount = 0
    }

    // Blocks of images are decoded in parallel, then appended in order.
    let block = 256
    var pixels = [UInt8](repeating: 0, count: block * imageBytes)
    var failures = [String?](repeating: nil, count: block)
    for blockStart in stride(from: 0, to: images.count, by: block) {
      let blockCount = min(block, images.count - blockStart)
      pixels.withUnsafeMutableBufferPointer { out in
        failures.withUnsafeMutableBufferPointer { failed in
          let base = out.baseAddress!
          let failedBase = failed.baseAddress!
          Parallel.forEach(blockCount) { range in
            let decoder = JPEGDecoder()
            let resizer = Resizer()
            for i in range {
              do {
                let image = try loadImage(folder.appendingPathComponent(images[blockStart + i]), decoder: decoder)
                let resized = resizer.resize(
                  image, crop: .centredSquare(width: image.width, height: image.height), size: imageSize)
                resized.pixels.withUnsafeBufferPointer {
                  (base + i * imageBytes).update(from: $0.baseAddress!, count: imageBytes)
                }
                failedBase[i] = nil
              } catch {
                failedBase[i] = "\(error)"
              }
            }
          }
        }
      }
      for i in 0..<blockCount {
        let image = blockStart + i
        let name = images[image]
        if let reason = failures[i] {
          guard skipBadImages else {
            throw InputError(
              file: folder.appendingPathComponent(name).path, line: nil,
              "\(reason) (listed on line \(listing.attributes.lines[image]) of \(listing.attributes.file)); restore or replace the image, or pass --skip-bad-images to leave it out."
            )
          }
          report.skipped.append((name, reason))
          continue
        }
        if shard == nil {
          let url = output.file(PackedDataset.shardFile(shardIndex))
          FileManager.default.createFile(atPath: url.path, contents: Data(count: PackedHeader.size))
          shard = try FileHandle(forWritingTo: url)
          try shard!.seekToEnd()
        }
        try output.guarded(PackedDataset.shardFile(shardIndex)) {
          try pixels.withUnsafeBytes {
            try shard!.write(contentsOf: UnsafeRawBufferPointer(rebasing: $0[(i * imageBytes)..<((i + 1) * imageBytes)]))
          }
        }
        shardCount += 1
        if shardCount == perShard { try closeShard() }
        names.append(name)
        for attribute in 0..<attributeCount {
          labels.append(listing.attributes.labels[image * attributeCount + attribute] ? 1 : 0)
        }
        splits.append(UInt8(listing.splits[image].rawValue))
        report.perSplit[listing.splits[image].rawValue] += 1
      }
      progress(blockStart + blockCount)
    }
    try closeShard()
    report.packed = names.count
    guard report.packed > 0 else {
      throw InputError(
        file: folder.path, line: nil, "has no usable image: all \(images.count) were missing or undecodable.")
    }
    let payload = labels + splits
    let header = payload.withUnsafeBytes {
      PackedHeader(
        kind: .labels, height: 1, width: attributeCount, channels: 1, count: names.count, first: 0,
        payloadBytes: payload.count, checksum: PackedChecksum.of($0))
    }
    try output.write(header.bytes + payload, to: PackedDataset.labelFile)
    try output.write(Array(names.map { $0 + "\n" }.joined().utf8), to: PackedDataset.namesFile)
    report.seconds = Clock.now() - start
    return report
  }

  /// Reads and decodes one image; the error says what is wrong with it.
  static func loadImage(_ url: URL, decoder: JPEGDecoder) throws -> RGBImage {
    guard let data = FileManager.default.contents(atPath: url.path) else {
      throw ImageFileError(message: "is missing or unreadable")
    }
    do {
      return try data.withUnsafeBytes { try decoder.decode($0) }
    } catch {
      throw ImageFileError(message: "cannot be decoded as a JPEG (\(error))")
    }
  }
}

/// Why one image file could not be used.
struct ImageFileError: Error, CustomStringConvertible {
  let message: String
  var description: String { message }
}

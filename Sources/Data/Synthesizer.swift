// `fairtune synth`: a synthetic dataset in CelebA's published layout, labels and faces.
import CelebAFormat
import Foundation
import Support
import Tensors

/// What to write: image counts per split, the image side, the seed, and optionally label rows
/// taken from a CelebA attribute file instead of the label model.
public struct SynthesisPlan: Sendable {
  public var train: Int
  public var validation: Int
  public var test: Int
  public var imageSize: Int
  public var seed: UInt64
  /// Applied to every face after drawing (the labels and the drawing do not change).
  public var shift: PhotometricShift

  public init(train: Int, validation: Int, test: Int, imageSize: Int, seed: UInt64, shift: PhotometricShift = .none) {
    self.shift = shift
    self.train = train
    self.validation = validation
    self.test = test
    self.imageSize = imageSize
    self.seed = seed
  }

  public var count: Int { train + validation + test }

  /// CelebA's order: all train images, then validation, then test.
  public func split(of image: Int) -> CelebASplit {
    image < train ? .train : image < train + validation ? .validation : .test
  }
}

public enum Synthesizer {
  /// Labels for `plan`: the first `plan.count` rows of `attributes` (which must name CelebA's
  /// 40 attributes in order), or rows drawn from CelebA's label model with `plan.seed`.
  public static func labels(_ plan: SynthesisPlan, from attributes: CelebAAttributes?) throws -> [Bool] {
    guard let attributes else { return CelebALabelModel.celebA.sample(count: plan.count, seed: plan.seed) }
    guard attributes.names == CelebA.attributeNames else {
      throw InputError(
        file: attributes.file, line: attributes.headerLine,
        "must name CelebA's 40 attributes in list_attr_celeba.txt's order to label synthetic faces.")
    }
    guard attributes.images.count >= plan.count else {
      throw InputError(
        file: attributes.file, line: nil,
        "has \(attributes.images.count) label rows, fewer than the \(plan.count) images asked for; ask for fewer images or give a longer file."
      )
    }
    return Array(attributes.labels.prefix(plan.count * CelebA.attributeCount))
  }

  /// The seed of image `i`'s drawing (a stream apart from the labels').
  static func imageSeed(_ seed: UInt64, _ image: Int) -> UInt64 { rowSeed(seed ^ 0x1D8E_4E27_C47D_124F, image) }

  /// The file name of image `i` (0-based), as CelebA numbers them.
  public static func imageName(_ image: Int) -> String {
    let digits = String(image + 1)
    return String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".jpg"
  }

  /// Draws the face of row `image` of `labels`, under the plan's photometric shift.
  public static func face(_ image: Int, labels: [Bool], plan: SynthesisPlan) -> RGBImage {
    let drawn = labels.withUnsafeBufferPointer { table in
      SyntheticFace.render(
        labels: table.baseAddress! + image * CelebA.attributeCount, seed: imageSeed(plan.seed, image),
        size: plan.imageSize)
    }
    return plan.shift.apply(to: drawn, seed: imageSeed(plan.seed, image))
  }

  /// Writes the dataset into `output` (not committed here): img_align_celeba/NNNNNN.jpg,
  /// list_attr_celeba.txt and list_eval_partition.txt, drawing and encoding the faces on all
  /// `Parallel.workers` threads. `progress(done)` is called now and then from one thread.
  public static func write(
    _ plan: SynthesisPlan, labels: [Bool], into output: OutputDirectory, progress: (Int) -> Void = { _ in }
  ) throws {
    let folder = output.file(CelebAListing.imageFolder)
    do {
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
    } catch {
      throw OutputError(path: folder.path, message: "cannot create \(folder.path) (\(error.localizedDescription)).")
    }
    let failure = FirstError()
    Parallel.forEachChunk(plan.count, grain: 8) { chunk, range in
      let encoder = JPEGEncoder()
      for image in range where failure.error == nil {
        let face = face(image, labels: labels, plan: plan)
        // JPEG quality varies a little, as a nuisance, like the artefacts of real photos.
        let quality = 88 + Int(imageSeed(plan.seed, image) % 8)
        do {
          let bytes = try encoder.encode(face, quality: quality)
          try Data(bytes).write(to: folder.appendingPathComponent(imageName(image)))
        } catch {
          failure.record(OutputError(path: output.destination.path, message: "cannot write image \(imageName(image)) of \(output.destination.path) (\(OutputDirectory.reason(error))); is the disk full, or a file-size limit (ulimit -f) set?"))
        }
        if chunk == 0 && (image - range.lowerBound) % 256 == 0 {
          progress((image - range.lowerBound) * Parallel.chunkCount(plan.count, grain: 8))
        }
      }
    }
    if let error = failure.error { throw error }
    try output.write(attributeFile(labels: labels, count: plan.count), to: CelebAListing.attributeFile)
    try output.write(partitionFile(plan), to: CelebAListing.partitionFile)
  }

  /// list_attr_celeba.txt as CelebA writes it: the count, the names, and rows whose values are
  /// right-aligned in three characters (`  1` or ` -1`).
  public static func attributeFile(labels: [Bool], count: Int) -> [UInt8] {
    var text = Array("\(count)\n\(CelebA.attributeNames.joined(separator: " "))\n".utf8)
    text.reserveCapacity(count * (11 + 3 * CelebA.attributeCount) + text.count)
    for image in 0..<count {
      text += imageName(image).utf8
      for attribute in 0..<CelebA.attributeCount {
        text += labels[image * CelebA.attributeCount + attribute] ? Array("  1".utf8) : Array(" -1".utf8)
      }
      text.append(UInt8(ascii: "\n"))
    }
    return text
  }

  public static func partitionFile(_ plan: SynthesisPlan) -> [UInt8] {
    var text: [UInt8] = []
    for image in 0..<plan.count {
      text += "\(imageName(image)) \(plan.split(of: image).rawValue)\n".utf8
    }
    return text
  }

  /// The first `rows * columns` faces in a grid, for looking at.
  public static func contactSheet(labels: [Bool], plan: SynthesisPlan, rows: Int, columns: Int) -> RGBImage {
    let size = plan.imageSize
    let gap = 2
    var sheet = RGBImage(width: columns * (size + gap) + gap, height: rows * (size + gap) + gap)
    for i in 0..<(sheet.pixels.count) { sheet.pixels[i] = 255 }
    for image in 0..<min(rows * columns, plan.count) {
      let face = face(image, labels: labels, plan: plan)
      let x0 = gap + (image % columns) * (size + gap)
      let y0 = gap + (image / columns) * (size + gap)
      for y in 0..<size {
        let from = y * size * 3
        let to = ((y0 + y) * sheet.width + x0) * 3
        sheet.pixels.replaceSubrange(to..<(to + size * 3), with: face.pixels[from..<(from + size * 3)])
      }
    }
    return sheet
  }
}

/// The first error any worker thread met; the others stop at their next image.
final class FirstError: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: Error?

  var error: Error? {
    lock.lock()
    defer { lock.unlock() }
    return stored
  }

  func record(_ error: Error) {
    lock.lock()
    if stored == nil { stored = error }
    lock.unlock()
  }
}

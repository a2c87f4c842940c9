// Round trips: synth -> reader gives the labels back; pack -> loader gives the pixels of a
// direct decode, crop and resize; packed files are checked; faces are deterministic.
import CelebAFormat
import Foundation
import Tensors
import XCTest

@testable import Data

final class RoundTripTests: XCTestCase {
  let plan = SynthesisPlan(train: 20, validation: 6, test: 6, imageSize: 40, seed: 11)

  func testSynthThenReaderGivesTheLabelsBack() throws {
    let directory = try temporaryDirectory(self).appendingPathComponent("synth")
    let labels = try writeSynthetic(plan, to: directory)
    let listing = try CelebAListing(directory: directory)
    XCTAssertEqual(listing.attributes.labels, labels)
    XCTAssertEqual(listing.images, (0..<32).map(Synthesizer.imageName))
    XCTAssertEqual(
      listing.splits,
      Array(repeating: .train, count: 20) + Array(repeating: .validation, count: 6) + Array(repeating: .test, count: 6))
    let decoder = JPEGDecoder()
    let first = try Packer.loadImage(directory.appendingPathComponent("img_align_celeba/000001.jpg"), decoder: decoder)
    XCTAssertEqual([first.width, first.height], [40, 40])
  }

  func testLabelsCanComeFromAnAttributeFile() throws {
    let rows = [("a.jpg", everyOther), ("b.jpg", everyOther.map { -$0 }), ("c.jpg", everyOther)]
    let file = try CelebAAttributes(name: "list_attr_celeba.txt", text: attributeText(rows: rows))
    let two = SynthesisPlan(train: 1, validation: 0, test: 1, imageSize: 16, seed: 0)
    let labels = try Synthesizer.labels(two, from: file)
    XCTAssertEqual(labels, Array(file.labels.prefix(80)))
    let tooMany = SynthesisPlan(train: 4, validation: 0, test: 0, imageSize: 16, seed: 0)
    XCTAssertThrowsError(try Synthesizer.labels(tooMany, from: file)) { error in
      XCTAssertEqual(
        "\(error)",
        "list_attr_celeba.txt: has 3 label rows, fewer than the 4 images asked for; ask for fewer images or give a longer file."
      )
    }
  }

  func testFacesAreDeterministicForASeed() {
    let labels = CelebALabelModel.celebA.sample(count: 3, seed: 5)
    let plan = SynthesisPlan(train: 3, validation: 0, test: 0, imageSize: 32, seed: 5)
    XCTAssertEqual(Synthesizer.face(2, labels: labels, plan: plan), Synthesizer.face(2, labels: labels, plan: plan))
    var other = plan
    other.seed = 6
    XCTAssertNotEqual(Synthesizer.face(2, labels: labels, plan: plan), Synthesizer.face(2, labels: labels, plan: other))
  }

  /// The planted effect's faces: the same drawing under the shift, value by value as the
  /// formula says; the labels do not change.
  func testAPhotometricShiftMovesEveryValueAsStated() throws {
    let plan = SynthesisPlan(train: 3, validation: 0, test: 0, imageSize: 24, seed: 4)
    var shifted = plan
    shifted.shift = try PhotometricShift(parsing: "contrast=0.5,brightness=0.2,cast=0.1")
    XCTAssertEqual(shifted.shift, .strong)
    let labels = try Synthesizer.labels(plan, from: nil)
    XCTAssertEqual(try Synthesizer.labels(shifted, from: nil), labels)
    let clean = Synthesizer.face(1, labels: labels, plan: plan)
    let moved = Synthesizer.face(1, labels: labels, plan: shifted)
    for index in stride(from: 0, to: clean.pixels.count, by: 7) {
      let channel = index % 3
      let v = Double(clean.pixels[index]) / 255
      let expected = min(max(0.5 + 0.5 * (v - 0.5) + 0.2 + 0.1 * Double(1 - channel), 0), 1) * 255
      // One rounding to 8 bits.
      XCTAssertEqual(Double(moved.pixels[index]), expected, accuracy: 0.5 + 1e-9, "value \(index)")
    }
    XCTAssertEqual(Synthesizer.face(1, labels: labels, plan: SynthesisPlan(train: 3, validation: 0, test: 0, imageSize: 24, seed: 4, shift: .none)), clean)
    // Noise: drawn from the face's seed (the same face twice gives the same bits, another face
    // other noise).
    var noisy = plan
    noisy.shift = PhotometricShift(noise: 0.1)
    let a = Synthesizer.face(1, labels: labels, plan: noisy)
    XCTAssertEqual(a, Synthesizer.face(1, labels: labels, plan: noisy))
    XCTAssertNotEqual(a.pixels, Synthesizer.face(2, labels: labels, plan: noisy).pixels)
    // On a mid-grey image (v = 128/255, 5 sd from either end, so nothing is clamped) the added
    // values have mean 0 and sd 0.1: over 3,072 values the mean's standard error is 0.0018 and
    // the sd's relative one 1.3%; the bounds are about 5 of those. Rounding to 8 bits adds a
    // variance of (1/255)^2/12, negligible.
    let grey = RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 128, count: 32 * 32 * 3))
    let deltas = PhotometricShift(noise: 0.1).apply(to: grey, seed: 7).pixels.map { (Double($0) - 128) / 255 }
    let mean = deltas.reduce(0, +) / Double(deltas.count)
    let sd = (deltas.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(deltas.count - 1)).squareRoot()
    XCTAssertEqual(mean, 0, accuracy: 0.009)
    XCTAssertEqual(sd, 0.1, accuracy: 0.007)
  }

  func testPhotometricShiftsParseOrSayWhatIsWrong() throws {
    XCTAssertEqual(try PhotometricShift(parsing: "none"), .none)
    XCTAssertEqual(try PhotometricShift(parsing: "brightness=-0.1"), PhotometricShift(brightness: -0.1))
    XCTAssertEqual(try PhotometricShift(parsing: "cast=0.05,contrast=2").description, "contrast=2,brightness=0,cast=0.05")
    XCTAssertEqual(try PhotometricShift(parsing: "noise=0.25"), PhotometricShift(noise: 0.25))
    for (text, says) in [("contrast=0", "contrast must be in (0, 4]"), ("glow=1", "'glow' is not contrast, brightness, cast or noise"), ("contrast", "is not NAME=NUMBER"), ("brightness=2", "brightness must be in [-1, 1]"), ("cast=nan", "is not NAME=NUMBER"), ("noise=2", "noise must be in [0, 1]")] {
      XCTAssertThrowsError(try PhotometricShift(parsing: text), text) { error in
        XCTAssertTrue("\(error)".contains(says), "\(text): \(error)")
      }
    }
  }

  func testPackThenLoaderGivesTheDirectDecodeCropAndResize() throws {
    let root = try temporaryDirectory(self)
    let synth = root.appendingPathComponent("synth")
    let labels = try writeSynthetic(plan, to: synth)
    let out = root.appendingPathComponent("packed")
    let output = try OutputDirectory(out, option: "--out")
    _ = try Packer.pack(celebA: synth, imageSize: 24, into: output, skipBadImages: false)
    try output.commit()
    let dataset = try PackedDataset(path: out)
    XCTAssertEqual(dataset.count, 32)
    XCTAssertEqual(dataset.imageSize, 24)
    XCTAssertEqual(dataset.test, Array(26..<32))

    let order = [5, 0, 31, 17]
    let loader = BatchLoader(
      dataset: dataset, schedule: BatchSchedule(steps: 1) { _ in order }, transform: .none, threads: 2, seed: 0)
    let batch = try XCTUnwrap(loader.next())
    XCTAssertNil(loader.next())
    XCTAssertEqual(batch.images.shape, [4, 24, 24, 3])
    XCTAssertEqual(batch.labels.shape, [4, 40])
    XCTAssertEqual(batch.indices, order)
    let decoder = JPEGDecoder()
    let resizer = Resizer()
    for (position, image) in order.enumerated() {
      let decoded = try Packer.loadImage(
        synth.appendingPathComponent("img_align_celeba/\(Synthesizer.imageName(image))"), decoder: decoder)
      let direct = resizer.resize(decoded, crop: .centredSquare(width: decoded.width, height: decoded.height), size: 24)
      // The packed bytes are the direct decode's, and the batch is exactly their
      // normalisation.
      XCTAssertEqual(Array(UnsafeBufferPointer(start: dataset.pixels(image), count: 24 * 24 * 3)), direct.pixels)
      var expected = direct.pixels.map { Float($0) * (1 / 255) }
      Normalisation.imageNet.apply(&expected, pixels: 24 * 24)
      XCTAssertEqual(
        Array(UnsafeBufferPointer(start: batch.images.data + position * 24 * 24 * 3, count: 24 * 24 * 3)), expected)
      for a in 0..<40 {
        XCTAssertEqual(batch.labels.data[position * 40 + a], labels[image * 40 + a] ? 1 : 0)
      }
    }
  }

  func testCelebAsAlignedImagesAreCroppedToTheCentredSquare() throws {
    // A 178x218 image whose rows 20..<198 (the centred 178x178 square) are mid-gray and whose
    // 20 rows above and below are black: the packed image must be all gray.
    var pixels = [UInt8](repeating: 0, count: 178 * 218 * 3)
    for i in (20 * 178 * 3)..<(198 * 178 * 3) { pixels[i] = 128 }
    let image = RGBImage(width: 178, height: 218, pixels: pixels)
    XCTAssertEqual(PixelRect.centredSquare(width: 178, height: 218), PixelRect(x: 0, y: 20, width: 178, height: 178))
    let packed = Resizer().resize(image, crop: .centredSquare(width: 178, height: 218), size: 32)
    XCTAssertTrue(packed.pixels.allSatisfy { $0 == 128 })
  }

  func testDamagedPackedFilesAreRefused() throws {
    let root = try temporaryDirectory(self)
    let synth = root.appendingPathComponent("synth")
    try writeSynthetic(SynthesisPlan(train: 4, validation: 1, test: 1, imageSize: 16, seed: 2), to: synth)
    let out = root.appendingPathComponent("packed")
    let output = try OutputDirectory(out, option: "--out")
    _ = try Packer.pack(celebA: synth, imageSize: 16, into: output, skipBadImages: false)
    try output.commit()
    let shard = out.appendingPathComponent("images-000.bin")
    var bytes = try Data(contentsOf: shard)
    bytes[100] ^= 1
    try bytes.write(to: shard)
    XCTAssertThrowsError(try PackedDataset(path: out)) { error in
      XCTAssertEqual(
        "\(error)",
        "\(shard.path): fails its checksum: the file was changed or damaged after packing; pack the dataset again.")
    }
    try bytes.prefix(bytes.count - 5).write(to: shard)
    XCTAssertThrowsError(try PackedDataset(path: out)) { error in
      XCTAssertTrue("\(error)".contains("is truncated or damaged"), "\(error)")
    }
    XCTAssertThrowsError(try PackedDataset(path: synth)) { error in
      XCTAssertTrue("\(error)".contains("it is not a packed dataset; run `fairtune pack"), "\(error)")
    }
  }
}

final class TrainingDataTests: XCTestCase {
  func testARawFolderIsPackedOnceIntoTheCacheThenReused() throws {
    let root = try temporaryDirectory(self)
    let synth = root.appendingPathComponent("synth")
    try writeSynthetic(SynthesisPlan(train: 5, validation: 1, test: 2, imageSize: 20, seed: 4), to: synth)
    let cache = TrainingData.cache(forRun: root.appendingPathComponent("run"))
    var messages: [String] = []
    let first = try TrainingData.open(synth, imageSize: 12, cache: cache) { messages.append($0) }
    let second = try TrainingData.open(synth, imageSize: 12, cache: cache) { messages.append($0) }
    XCTAssertEqual(first.count, 8)
    XCTAssertEqual(second.path.standardizedFileURL.path, first.path.standardizedFileURL.path)
    XCTAssertTrue(messages[0].hasPrefix("packing "), "\(messages)")
    XCTAssertTrue(messages[1].hasPrefix("using the packed copy"), "\(messages)")
    XCTAssertThrowsError(try TrainingData.open(first.path, imageSize: 16, cache: cache)) { error in
      XCTAssertTrue("\(error)".contains("is packed at 12x12 but --image-size is 16"), "\(error)")
    }
    XCTAssertThrowsError(try TrainingData.open(root, imageSize: 16, cache: cache)) { error in
      XCTAssertTrue("\(error)".contains("is neither a packed dataset"), "\(error)")
    }
  }
}

extension RoundTripTests {
  func testAHeaderAskingForMoreBytesThanExistIsAnErrorNotATrap() throws {
    var header = PackedHeader(
      kind: .images, height: 0xFFFF_FFFF, width: 0xFFFF_FFFF, channels: 3, count: 0xFFFF_FFFF, first: 0,
      payloadBytes: 12, checksum: 0
    ).bytes
    header += [UInt8](repeating: 0, count: 12)
    XCTAssertThrowsError(try header.withUnsafeBytes { try PackedHeader($0, file: "images-000.bin") }) { error in
      XCTAssertEqual(
        "\(error)",
        "images-000.bin: has a damaged header: 4294967295 items of 4294967295x4294967295x3 do not make 12 payload bytes; pack the dataset again."
      )
    }
  }
}

// The strict CelebA reader and pack: every bad-input case names the file, the line and what
// to do, and a failed pack leaves nothing behind.
import CelebAFormat
import Foundation
import XCTest

@testable import Data

final class CelebAReaderTests: XCTestCase {
  func readError(_ attributes: String, _ partition: String = "000001.jpg 0\n000002.jpg 2\n") -> InputError? {
    do {
      _ = try CelebAListing(
        attributes: CelebAAttributes(name: "list_attr_celeba.txt", text: attributes, strict: true),
        partition: CelebAPartition(name: "list_eval_partition.txt", text: partition, strict: true))
      return nil
    } catch {
      return error as? InputError
    }
  }

  let twoRows = [("000001.jpg", everyOther), ("000002.jpg", everyOther.map { -$0 })]

  func testReadsCelebAsLayout() throws {
    let listing = try CelebAListing(
      attributes: CelebAAttributes(name: "a", text: attributeText(rows: twoRows), strict: true),
      partition: CelebAPartition(name: "p", text: "000002.jpg 2\n000001.jpg 0\n", strict: true))
    XCTAssertEqual(listing.images, ["000001.jpg", "000002.jpg"])
    XCTAssertEqual(listing.splits, [.train, .test])
    XCTAssertEqual(Array(listing.attributes.labels.prefix(3)), [true, false, true])
  }

  func testCountLineMissingOrWrong() {
    let noCount = attributeText(rows: twoRows).split(separator: "\n", maxSplits: 1)[1]
    XCTAssertEqual(
      readError(String(noCount)),
      InputError(
        file: "list_attr_celeba.txt", line: 1,
        "should hold the number of images (the first line of CelebA's list_attr_celeba.txt), but has '\(CelebA.attributeNames.joined(separator: " ").prefix(40))...'; add the count line."
      ))
    XCTAssertEqual(
      readError(attributeText(rows: twoRows, count: 3))?.description,
      "list_attr_celeba.txt:1: says 3 images but the file has 2 rows; restore the missing rows or correct the count.")
  }

  func testAttributeNamesMustBeCelebAsInOrder() {
    var swapped = CelebA.attributeNames
    swapped.swapAt(3, 4)
    XCTAssertEqual(
      readError(attributeText(rows: twoRows, names: swapped))?.description,
      "list_attr_celeba.txt:2: attribute 4 is 'Bald' where CelebA has 'Bags_Under_Eyes'; the 40 names must be CelebA's, in list_attr_celeba.txt's order."
    )
    let short = Array(CelebA.attributeNames.dropLast())
    let error = readError(attributeText(rows: [("000001.jpg", Array(everyOther.dropLast()))], names: short))
    XCTAssertEqual(error?.line, 2)
    XCTAssertTrue(
      error?.message.hasPrefix("names 39 attributes; CelebA's format has 40") ?? false, "\(String(describing: error))")
  }

  func testValuesOtherThanOneOrMinusOne() {
    var values = everyOther
    values[5] = 0
    XCTAssertEqual(
      readError(attributeText(rows: [twoRows[0], ("000002.jpg", values)]))?.description,
      "list_attr_celeba.txt:4: value '0' for Bangs of 000002.jpg is not 1 or -1.")
    let text = attributeText(rows: twoRows).replacingOccurrences(of: "000002.jpg -1", with: "000002.jpg yes")
    XCTAssertEqual(readError(text)?.line, 4)
  }

  func testDuplicateAndUnsafeFileNames() {
    XCTAssertEqual(
      readError(attributeText(rows: [twoRows[0], twoRows[0]]))?.description,
      "list_attr_celeba.txt:4: repeats image 000001.jpg, already on line 3.")
    XCTAssertEqual(
      readError(attributeText(rows: twoRows), "000001.jpg 0\n000002.jpg 2\n000001.jpg 1\n")?.description,
      "list_eval_partition.txt:3: repeats image 000001.jpg, already on line 1.")
    let unsafe = readError(attributeText(rows: [("../000001.jpg", everyOther)]), "../000001.jpg 0\n")
    XCTAssertEqual(unsafe?.line, 3)
    XCTAssertTrue(unsafe?.message.contains("is not a plain file name") ?? false)
  }

  func testPartitionRowsWithoutLabelsAndLabelsWithoutPartition() {
    XCTAssertEqual(
      readError(attributeText(rows: twoRows), "000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n")?.description,
      "list_eval_partition.txt:3: puts image 000003.jpg in a split, but list_attr_celeba.txt has no labels for it; add its row there or remove this line."
    )
    XCTAssertEqual(
      readError(attributeText(rows: twoRows), "000001.jpg 0\n")?.description,
      "list_attr_celeba.txt:4: image 000002.jpg is in no split: list_eval_partition.txt has no line for it; add `000002.jpg 0` (train), 1 (validation) or 2 (test) there."
    )
  }

  func testMissingFilesAreInputErrors() throws {
    let directory = try temporaryDirectory(self)
    XCTAssertThrowsError(try CelebAListing(directory: directory)) { error in
      XCTAssertEqual((error as? InputError)?.file, directory.appendingPathComponent("list_attr_celeba.txt").path)
    }
  }

  // MARK: Images: missing or undecodable, with and without --skip-bad-images.

  func damagedDataset() throws -> (root: URL, dataset: URL) {
    let root = try temporaryDirectory(self)
    let dataset = root.appendingPathComponent("celeba")
    try writeSynthetic(SynthesisPlan(train: 6, validation: 1, test: 1, imageSize: 24, seed: 1), to: dataset)
    let images = dataset.appendingPathComponent("img_align_celeba")
    try FileManager.default.removeItem(at: images.appendingPathComponent("000003.jpg"))
    try Data("not a jpeg".utf8).write(to: images.appendingPathComponent("000005.jpg"))
    return (root, dataset)
  }

  func testMissingImageFailsThePackAndLeavesNothing() throws {
    let (root, dataset) = try damagedDataset()
    let out = root.appendingPathComponent("packed")
    XCTAssertThrowsError(
      try {
        let output = try OutputDirectory(out, option: "--out")
        _ = try Packer.pack(celebA: dataset, imageSize: 16, into: output, skipBadImages: false)
      }()
    ) { error in
      let input = error as? InputError
      XCTAssertEqual(input?.file, dataset.appendingPathComponent("img_align_celeba/000003.jpg").path)
      XCTAssertEqual(
        input?.message,
        "is missing or unreadable (listed on line 5 of \(dataset.appendingPathComponent("list_attr_celeba.txt").path)); restore or replace the image, or pass --skip-bad-images to leave it out."
      )
    }
    XCTAssertEqual(contents(of: root), ["celeba"], "a failed pack must leave no output, partial or temporary")
  }

  func testBadLabelFileFailsThePackAndLeavesNothing() throws {
    let (root, dataset) = try damagedDataset()
    let file = dataset.appendingPathComponent("list_attr_celeba.txt")
    let text = try String(contentsOf: file, encoding: .utf8)
    try text.replacingOccurrences(of: "8\n", with: "9\n", options: .anchored).write(
      to: file, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(
      try {
        let output = try OutputDirectory(root.appendingPathComponent("packed"), option: "--out")
        _ = try Packer.pack(celebA: dataset, imageSize: 16, into: output, skipBadImages: true)
      }()
    ) { error in
      XCTAssertEqual(
        "\(error)",
        "\(file.path):1: says 9 images but the file has 8 rows; restore the missing rows or correct the count.")
    }
    XCTAssertEqual(contents(of: root), ["celeba"])
  }

  func testUndecodableImageIsNamed() throws {
    let (root, dataset) = try damagedDataset()
    try Data(contentsOf: dataset.appendingPathComponent("img_align_celeba/000001.jpg"))
      .write(to: dataset.appendingPathComponent("img_align_celeba/000003.jpg"))
    XCTAssertThrowsError(
      try {
        let output = try OutputDirectory(root.appendingPathComponent("packed"), option: "--out")
        _ = try Packer.pack(celebA: dataset, imageSize: 16, into: output, skipBadImages: false)
      }()
    ) { error in
      XCTAssertEqual((error as? InputError)?.file, dataset.appendingPathComponent("img_align_celeba/000005.jpg").path)
      XCTAssertTrue((error as? InputError)?.message.hasPrefix("cannot be decoded as a JPEG") ?? false, "\(error)")
    }
    XCTAssertEqual(contents(of: root), ["celeba"])
  }

  func testSkipBadImagesLeavesThemOutWithACount() throws {
    let (root, dataset) = try damagedDataset()
    let out = root.appendingPathComponent("packed")
    let output = try OutputDirectory(out, option: "--out")
    let report = try Packer.pack(celebA: dataset, imageSize: 16, into: output, skipBadImages: true)
    try output.commit()
    XCTAssertEqual(report.skipped.map(\.image), ["000003.jpg", "000005.jpg"])
    XCTAssertEqual(report.packed, 6)
    let packed = try PackedDataset(path: out)
    XCTAssertEqual(
      packed.imageNames, ["000001.jpg", "000002.jpg", "000004.jpg", "000006.jpg", "000007.jpg", "000008.jpg"])
    XCTAssertEqual(packed.splits, [.train, .train, .train, .train, .validation, .test])
  }

  func testExistingOutputIsRefused() throws {
    let root = try temporaryDirectory(self)
    XCTAssertThrowsError(try OutputDirectory(root, option: "--out")) { error in
      XCTAssertEqual(
        "\(error)", "--out \(root.standardizedFileURL.path) already exists; remove it or choose another directory.")
    }
  }
}

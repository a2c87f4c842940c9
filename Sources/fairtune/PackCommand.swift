// `fairtune pack`: decodes a CelebA-format folder once into memory-mappable uint8 shards.
import ArgumentParser
import CelebAFormat
import Data
import Foundation
import Training

struct PackCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pack",
    abstract: "Decode, crop and resize a CelebA-format dataset once into packed shards for training.",
    discussion: paragraphs("""
      Reads DIR/list_attr_celeba.txt, DIR/list_eval_partition.txt and DIR/img_align_celeba/ \
      strictly (count line, CelebA's 40 names in order, values 1/-1, every image labelled, \
      partitioned and decodable). Each image is cropped to its centred square (178x178 for \
      CelebA's 178x218 aligned images) and resized to SIZE x SIZE with an antialiased bilinear \
      filter. Writes OUT/images-NNN.bin (uint8 RGB shards), OUT/labels.bin and OUT/images.txt; \
      each binary file has a header with a magic number, version, shape, count and checksum. \
      Nothing is left under OUT if the command fails.
      """))

  @Option(help: "CelebA-format dataset folder (as written by `fairtune synth`, or the real CelebA).")
  var celeba: String

  @Option(help: "Packed images are SIZE x SIZE pixels.")
  var imageSize: Int = 64

  @Option(help: "Output directory (must not exist).")
  var out: String

  @Flag(help: "Leave out missing or undecodable images (with a warning and their count) instead of failing.")
  var skipBadImages = false

  @Option(help: "Decoding threads.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws {
    guard (8...1024).contains(imageSize) else {
      throw ValidationError("--image-size must be between 8 and 1024 pixels (got \(imageSize)).")
    }
    guard threads > 0 else { throw ValidationError("--threads must be positive (got \(threads)).") }
  }

  func run() throws {
    Launch.setThreads(threads)
    let output = try OutputDirectory(URL(fileURLWithPath: out), option: "--out")
    let report = try Packer.pack(
      celebA: URL(fileURLWithPath: celeba), imageSize: imageSize, into: output, skipBadImages: skipBadImages)
    try output.commit()
    if !report.skipped.isEmpty {
      let shown = report.skipped.prefix(5).map { "\($0.image) (\($0.reason))" }.joined(separator: ", ")
      print("warning: left out \(report.skipped.count) bad images: \(shown)\(report.skipped.count > 5 ? ", ..." : "")")
    }
    print(
      String(
        format: "packed %d images (%d train, %d val, %d test) at %dx%d into %@ in %.1f s (%.0f img/s)",
        report.packed, report.perSplit[0], report.perSplit[1], report.perSplit[2], imageSize, imageSize, out,
        report.seconds, Double(report.packed + report.skipped.count) / report.seconds))
  }
}

// `fairtune synth`: writes a synthetic CelebA-format dataset (labels with CelebA's statistics,
// faces that show them).
import ArgumentParser
import CelebAFormat
import Data
import Foundation
import Training

struct SynthCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "synth",
    abstract: "Write a synthetic dataset in CelebA's layout: faces drawn to show their 40 attribute labels.",
    discussion: paragraphs("""
      Writes OUT/img_align_celeba/NNNNNN.jpg (SIZE x SIZE JPEGs), OUT/list_attr_celeba.txt and \
      OUT/list_eval_partition.txt (train, then validation, then test images). Labels are drawn \
      from a model with CelebA's 40 positive rates and pairwise correlations, or taken row by \
      row from --attributes. Every attribute has a visible cue of graded difficulty; pose, \
      lighting, background, blur and noise vary as nuisances. The same seed gives the same \
      files on any machine and thread count. Nothing is left under OUT if the command fails.
      """))

  @Option(help: "Output directory (must not exist).")
  var out: String

  @Option(help: "Train images.")
  var train: Int = 8000

  @Option(help: "Validation images.")
  var val: Int = 1000

  @Option(help: "Test images.")
  var test: Int = 1000

  @Option(help: "Images are SIZE x SIZE pixels.")
  var imageSize: Int = 128

  @Option(help: "Seed of labels and faces.")
  var seed: UInt64 = 0

  @Option(help: "Take the label rows from this CelebA-format attribute file (its first TRAIN+VAL+TEST rows).")
  var attributes: String?

  @Option(help: "Also write a JPEG grid of the first 16 faces here, and print their labels.")
  var contactSheet: String?

  @Option(help: ArgumentHelp(
    "A global photometric shift of every face: none, strong, or contrast=C,brightness=B,cast=K,noise=N.",
    discussion: paragraphs("""
      Each value v in [0, 1] becomes 0.5 + C (v - 0.5) + B, plus K on red and minus K on blue, \
      plus N times a standard normal draw (per value, from the face's seed), \
      clamped. The same seed with and without a shift draws the same faces and labels, so a \
      shifted copy of a dataset can pretrain a backbone whose BatchNorm statistics are known to \
      be wrong for the unshifted copy: the planted effect of docs/mechanism.md. strong is \
      contrast=0.5,brightness=0.2,cast=0.1.
      """)),
    transform: { text in
      do { return try PhotometricShift(parsing: text) } catch { throw ValidationError("--shift \(error)") }
    })
  var shift: PhotometricShift = .none

  @Option(help: "Threads that draw and encode faces.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws {
    for (name, value) in [("--train", train), ("--val", val), ("--test", test)] where value < 0 {
      throw ValidationError("\(name) cannot be negative (got \(value)).")
    }
    guard train + val + test > 0 else {
      throw ValidationError("--train, --val and --test are all 0: ask for some images.")
    }
    guard train + val + test <= 999_999 else {
      throw ValidationError(
        "at most 999,999 images fit CelebA's six-digit file names (asked for \(train + val + test)).")
    }
    guard (16...1024).contains(imageSize) else {
      throw ValidationError("--image-size must be between 16 and 1024 pixels (got \(imageSize)).")
    }
    guard threads > 0 else { throw ValidationError("--threads must be positive (got \(threads)).") }
  }

  func run() throws {
    Launch.setThreads(threads)
    let plan = SynthesisPlan(train: train, validation: val, test: test, imageSize: imageSize, seed: seed, shift: shift)
    let source = try attributes.map { try CelebAAttributes(contentsOf: URL(fileURLWithPath: $0)) }
    let labels = try Synthesizer.labels(plan, from: source)
    let output = try OutputDirectory(URL(fileURLWithPath: out), option: "--out")
    let start = Date().timeIntervalSince1970
    try Synthesizer.write(plan, labels: labels, into: output) { done in
      let elapsed = Date().timeIntervalSince1970 - start
      if done > 0 {
        FileHandle.standardError.write(
          Data(String(format: "\r%d/%d images, %.0f img/s ", done, plan.count, Double(done) / elapsed).utf8))
      }
    }
    try output.commit()
    let seconds = Date().timeIntervalSince1970 - start
    FileHandle.standardError.write(Data("\r".utf8))
    print(
      String(
        format: "wrote %d images (%d train, %d val, %d test) to %@ in %.1f s (%.0f img/s)%@",
        plan.count, train, val, test, out, seconds, Double(plan.count) / seconds,
        shift.isIdentity ? "" : ", under the photometric shift \(shift)"))
    if let contactSheet {
      let sheet = Synthesizer.contactSheet(labels: labels, plan: plan, rows: 4, columns: 4)
      try Data(JPEGEncoder().encode(sheet, quality: 95)).write(to: URL(fileURLWithPath: contactSheet))
      print("contact sheet of the first 16 faces (row by row): \(contactSheet)")
      for image in 0..<min(16, plan.count) {
        let present = (0..<CelebA.attributeCount).filter { labels[image * CelebA.attributeCount + $0] }
        print("\(Synthesizer.imageName(image)): \(present.map { CelebA.attributeNames[$0] }.joined(separator: " "))")
      }
    }
  }
}

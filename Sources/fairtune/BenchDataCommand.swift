// `fairtune bench-data`: throughput of the data pipeline (synth, JPEG decode, pack, loader),
// the training step's wait for data, and whether a small network learns the synthetic faces.
import ArgumentParser
import Foundation
import Training

struct BenchDataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-data",
    abstract: "Time the data pipeline and check that the synthetic attributes are learnable.",
    discussion: paragraphs("""
      In a temporary directory: draws --images synthetic faces (images/s), decodes their JPEGs \
      with libjpeg-turbo alone (the raw decode rate, 1 and 2 threads), packs them at \
      --image-size (decode + crop + resize, images/s), runs the loader with SimCLR's two views \
      on 1 and 2 threads (images/s), and trains ResNet-18 at --image-size for --steps steps fed \
      by the loader, reporting the share of step time spent waiting for data. With \
      --learn-steps K > 0 it then trains a small ResNet-18 (--learn-width, --learn-stem) for K steps \
      on the train split and prints each attribute's test accuracy against the majority-class \
      baseline.
      """))

  @Option(help: "Synthetic images to draw, decode and pack.")
  var images: Int = 2000

  @Option(help: "Side of the synthetic JPEGs.")
  var synthSize: Int = 128

  @Option(help: "Side of the packed images and the network input.")
  var imageSize: Int = 64

  @Option(help: "Batch of the loader and training measurements.")
  var batch: Int = 64

  @Option(help: "Training steps fed by the loader (ResNet-18, full width).")
  var steps: Int = 12

  @Option(help: "Steps of the learnability run (0: skip it).")
  var learnSteps: Int = 0

  @Option(help: "Width multiplier of the learnability network (ResNet-18).")
  var learnWidth: Double = 0.5

  @Option(help: "Stem of the learnability network: imagenet or small.")
  var learnStem: String = "imagenet"

  @Option(help: "SGD learning rate of the learnability run (loss: mean BCE over images and attributes).")
  var learnRate: Float = 0.2

  @Option(help: "Seed of the synthetic data.")
  var seed: UInt64 = 1

  @Option(help: "Keep the synthetic and packed data here instead of a temporary directory.")
  var keep: String?

  func validate() throws {
    guard images >= 2 * batch else { throw ValidationError("--images must be at least twice --batch (got \(images)).") }
    guard batch > 0, steps > 0, learnSteps >= 0 else {
      throw ValidationError("--batch and --steps must be positive and --learn-steps not negative.")
    }
    guard DataBenchmark.stems.contains(learnStem), learnWidth > 0 else {
      throw ValidationError("--learn-stem must be imagenet or small, and --learn-width positive.")
    }
    guard (16...1024).contains(synthSize), (16...synthSize).contains(imageSize) else {
      throw ValidationError("need 16 <= --image-size <= --synth-size <= 1024.")
    }
  }

  func run() throws {
    // Progress lines should reach a log file as they happen, not when the run ends.
    setvbuf(stdout, nil, _IOLBF, 0)
    var job = DataBenchmark()
    (job.images, job.synthSize, job.imageSize, job.batch, job.steps, job.seed) = (images, synthSize, imageSize, batch, steps, seed)
    (job.learnSteps, job.learnWidth, job.learnStem, job.learnRate) = (learnSteps, learnWidth, learnStem, learnRate)
    let root = keep.map { URL(fileURLWithPath: $0) }
      ?? FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-bench-data-\(ProcessInfo.processInfo.processIdentifier)")
    defer { if keep == nil { try? FileManager.default.removeItem(at: root) } }
    try job.run(in: root) { print($0) }
  }
}

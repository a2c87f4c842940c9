// `fairtune bench-data`: throughput of the data pipeline (synth, JPEG decode, pack, loader),
// the training step's wait for data, and whether a small network learns the synthetic faces.
import ArgumentParser
import CelebAFormat
import Data
import Foundation
import NN
import Tensors
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
    guard Stem(rawValue: learnStem) != nil, learnWidth > 0 else {
      throw ValidationError("--learn-stem must be imagenet or small, and --learn-width positive.")
    }
    guard (16...1024).contains(synthSize), (16...synthSize).contains(imageSize) else {
      throw ValidationError("need 16 <= --image-size <= --synth-size <= 1024.")
    }
  }

  func run() throws {
    // Progress lines should reach a log file as they happen, not when the run ends.
    setvbuf(stdout, nil, _IOLBF, 0)
    let cores = ProcessInfo.processInfo.activeProcessorCount
    BLAS.setThreads(cores)
    let root =
      keep.map { URL(fileURLWithPath: $0) }
      ?? FileManager.default.temporaryDirectory.appendingPathComponent(
        "fairtune-bench-data-\(ProcessInfo.processInfo.processIdentifier)")
    try? FileManager.default.removeItem(at: root)
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { if keep == nil { try? FileManager.default.removeItem(at: root) } }
    print("\(cores) cores; \(images) synthetic \(synthSize)x\(synthSize) faces, packed at \(imageSize)x\(imageSize)")

    // Synth.
    let test = max(images / 5, batch)
    let plan = SynthesisPlan(train: images - test, validation: 0, test: test, imageSize: synthSize, seed: seed)
    let synth = root.appendingPathComponent("synth")
    var start = Clock.now()
    let labels = try Synthesizer.labels(plan, from: nil)
    let output = try OutputDirectory(synth, option: "synth")
    try Synthesizer.write(plan, labels: labels, into: output)
    try output.commit()
    let synthRate = Double(images) / (Clock.now() - start)
    print(
      String(
        format: "synth:            %7.0f img/s (labels, drawing, JPEG encode and write; %d threads)", synthRate, cores))

    // Raw libjpeg-turbo decode of the same files, from memory.
    let files = (0..<images).map { image in
      [UInt8](
        FileManager.default.contents(
          atPath: synth.appendingPathComponent("img_align_celeba/\(Synthesizer.imageName(image))").path)!)
    }
    var decodeRates: [Double] = []
    for threads in [1, 2] {
      Parallel.workers = threads
      start = Clock.now()
      Parallel.forEach(files.count) { range in
        let decoder = JPEGDecoder()
        for i in range { _ = try? decoder.decode(files[i]) }
      }
      decodeRates.append(Double(images) / (Clock.now() - start))
    }
    Parallel.workers = cores
    print(
      String(
        format:
          "raw JPEG decode:  %7.0f img/s on 1 thread, %.0f on 2 (libjpeg-turbo tjDecompress2, accurate DCT, files in memory)",
        decodeRates[0], decodeRates[1]))

    // Pack.
    let packed = root.appendingPathComponent("packed")
    let packOutput = try OutputDirectory(packed, option: "pack")
    let report = try Packer.pack(celebA: synth, imageSize: imageSize, into: packOutput, skipBadImages: false)
    try packOutput.commit()
    let packRate = Double(report.packed) / report.seconds
    print(
      String(
        format: "pack:             %7.0f img/s (read, decode, crop, antialiased resize, write; %d threads)", packRate,
        cores))

    let dataset = try PackedDataset(path: packed)
    let transform = Transform.simCLR(SimCLRAugmentation(strength: 1, blur: false))
    var loaderRates: [Double] = []
    for threads in [1, 2] {
      let loader = BatchLoader(
        dataset: dataset, schedule: schedule(dataset, steps: 20), transform: transform, threads: threads, seed: 0)
      _ = loader.next()
      start = Clock.now()
      var count = 0
      while let batch = loader.next() { count += batch.indices.count }
      loaderRates.append(Double(count) / (Clock.now() - start))
    }
    print(
      String(
        format: "loader (SimCLR):  %7.0f img/s on 1 thread, %.0f on 2 (two augmented views per image)", loaderRates[0],
        loaderRates[1]))

    let (waitFraction, stepWithLoader, stepAlone) = try measureWait(dataset, transform: transform)
    print(
      String(
        format:
          "training wait:    %6.2f%% of step time waiting for data (ResNet-18, %dx%d, batch %d, loader 1 thread, SimCLR views); step %.0f ms with the loader running, %.0f ms without",
        100 * waitFraction, imageSize, imageSize, batch, stepWithLoader * 1000, stepAlone * 1000))

    if learnSteps > 0 { try learnability(dataset) }
  }

  private func schedule(_ dataset: PackedDataset, steps: Int) -> BatchSchedule {
    let sampler = DistributedSampler(datasetSize: dataset.train.count, globalBatch: batch, rank: 0, ranks: 1, seed: 3, dropLast: true)
    let perEpoch = dataset.train.count / batch
    let epochs = (steps + perEpoch - 1) / perEpoch
    // The measurements feed fixed-size batches to the network: no partial last batch.
    let all = BatchSchedule.epochs(sampler, images: dataset.train, epochs: epochs)
    return BatchSchedule(steps: steps, indices: all.indices)
  }

  /// Full-width ResNet-18 BCE steps on the loader's first view, the loader on one background
  /// thread, against the same steps on one fixed batch.
  private func measureWait(_ dataset: PackedDataset, transform: Transform) throws -> (Double, Double, Double) {
    let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .imagenet, width: 1, classes: 40), seed: 1)
    let trainingStep = TrainingStep.single(model, objective: .attributes, optimizer: SGD(model.registry, learningRate: 0.01, momentum: 0.9))
    func step(_ images: Tensor, _ labels: Tensor) throws {
      _ = try trainingStep(TrainingBatch(images: images.data, labels: labels.data, count: batch), imageSize: imageSize, globalBatch: batch)
    }
    let loader = BatchLoader(
      dataset: dataset, schedule: schedule(dataset, steps: steps + 1), transform: transform, threads: 1, seed: 0)
    let first = loader.next()!
    try step(first.images, first.labels)
    let waitBefore = loader.waitSeconds
    let start = Clock.now()
    while let batch = loader.next() { try step(batch.images, batch.labels) }
    let total = Clock.now() - start
    let waited = loader.waitSeconds - waitBefore
    let aloneStart = Clock.now()
    for _ in 0..<min(steps, 4) { try step(first.images, first.labels) }
    let alone = (Clock.now() - aloneStart) / Double(min(steps, 4))
    return (waited / total, total / Double(steps), alone)
  }

  /// A small ResNet-18 trained briefly with the fine-tuning augmentation; per-attribute test
  /// accuracy against always predicting the train split's majority class.
  private func learnability(_ dataset: PackedDataset) throws {
    let model = try ResNet(
      ResNetConfiguration(depth: .resnet18, stem: Stem(rawValue: learnStem)!, width: learnWidth, classes: 40), seed: 2)
    let trainingStep = TrainingStep.single(
      model, objective: .attributes,
      optimizer: SGD(model.registry.parameters { $0.requiresGradient }, learningRate: learnRate, momentum: 0.9, weightDecay: 1e-4))
    let loader = BatchLoader(
      dataset: dataset, schedule: schedule(dataset, steps: learnSteps), transform: .finetuneDefault, threads: 1, seed: 5
    )
    let start = Clock.now()
    var losses: [Float] = []
    while let b = loader.next() {
      let loss = try trainingStep(TrainingBatch(images: b.images.data, labels: b.labels.data, count: batch), imageSize: imageSize, globalBatch: batch).loss
      losses.append(Float(loss))
      if b.step % 50 == 0 {
        print(
          String(
            format: "  learn step %d/%d, loss %.4f, %.0f s", b.step, learnSteps,
            losses.suffix(50).reduce(0, +) / Float(min(50, losses.count)), Clock.now() - start))
      }
    }
    model.setBatchNormTraining(false)
    let train = dataset.train
    var majority = [Bool](repeating: false, count: 40)
    for a in 0..<40 {
      majority[a] = train.reduce(0) { $0 + Int(dataset.labels($1)[a]) } * 2 > train.count
    }
    let test = dataset.test
    let evaluation = BatchSchedule(steps: test.count / batch) { step in
      Array(test[(step * batch)..<((step + 1) * batch)])
    }
    let evaluator = BatchLoader(dataset: dataset, schedule: evaluation, transform: .none, threads: 1, seed: 0)
    var correct = [Int](repeating: 0, count: 40)
    var baseline = [Int](repeating: 0, count: 40)
    var seen = 0
    while let b = evaluator.next() {
      let logits = model.forward(
        FeatureMap(data: b.images.data, batch: batch, height: imageSize, width: imageSize, channels: 3))
      for n in 0..<batch {
        for a in 0..<40 {
          let truth = b.labels.data[n * 40 + a] > 0.5
          if (logits[n * 40 + a] > 0) == truth { correct[a] += 1 }
          if majority[a] == truth { baseline[a] += 1 }
        }
      }
      seen += batch
    }
    print(
      String(
        format:
          "learnability: ResNet-18 (width %g, %@ stem), %d steps of %d at learning rate %g in %.0f s; test accuracy on %d images vs majority class:",
        learnWidth, learnStem as NSString, learnSteps, batch, Double(learnRate), Clock.now() - start, seen))
    var better = 0
    for a in 0..<40 {
      let accuracy = Double(correct[a]) / Double(seen)
      let base = Double(baseline[a]) / Double(seen)
      if accuracy > base { better += 1 }
      print(
        String(
          format: "  %-20@ %5.1f%%  majority %5.1f%%  gain %+5.1f", CelebA.attributeNames[a] as NSString,
          100 * accuracy, 100 * base, 100 * (accuracy - base)))
    }
    print("learnability: \(better) of 40 attributes beat the majority-class baseline")
  }
}

// What `fairtune bench-data` measures, as a job: throughput of the data pipeline (synth, JPEG
// decode, pack, loader), the training step's wait for data, and whether a small network learns
// the synthetic faces.
import CelebAFormat
import Data
import Foundation
import NN
import Tensors

public struct DataBenchmark {
  /// Synthetic images to draw, decode and pack.
  public var images = 2000
  /// Side of the synthetic JPEGs, and of the packed images and the network input.
  public var synthSize = 128
  public var imageSize = 64
  /// Batch of the loader and training measurements, and the training steps fed by the loader.
  public var batch = 64
  public var steps = 12
  /// The learnability run: steps (0: skip it), the network's width and stem, SGD's rate.
  public var learnSteps = 0
  public var learnWidth = 0.5
  public var learnStem = "imagenet"
  public var learnRate: Float = 0.2
  /// Seed of the synthetic data.
  public var seed: UInt64 = 1

  public init() {}

  /// The stems the learnability network may have.
  public static let stems = Stem.allCases.map(\.rawValue)

  /// Runs every measurement in `root` (made empty first), a result line at a time to `say`.
  public func run(in root: URL, say: (String) -> Void) throws {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    BLAS.setThreads(cores)
    try? FileManager.default.removeItem(at: root)
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    say("\(cores) cores; \(images) synthetic \(synthSize)x\(synthSize) faces, packed at \(imageSize)x\(imageSize)")

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
    say(
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
    say(
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
    say(
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
    say(
      String(
        format: "loader (SimCLR):  %7.0f img/s on 1 thread, %.0f on 2 (two augmented views per image)", loaderRates[0],
        loaderRates[1]))

    let (waitFraction, stepWithLoader, stepAlone) = try measureWait(dataset, transform: transform)
    say(
      String(
        format:
          "training wait:    %6.2f%% of step time waiting for data (ResNet-18, %dx%d, batch %d, loader 1 thread, SimCLR views); step %.0f ms with the loader running, %.0f ms without",
        100 * waitFraction, imageSize, imageSize, batch, stepWithLoader * 1000, stepAlone * 1000))

    if learnSteps > 0 { try learnability(dataset, say: say) }
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
  private func learnability(_ dataset: PackedDataset, say: (String) -> Void) throws {
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
        say(
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
    say(
      String(
        format:
          "learnability: ResNet-18 (width %g, %@ stem), %d steps of %d at learning rate %g in %.0f s; test accuracy on %d images vs majority class:",
        learnWidth, learnStem as NSString, learnSteps, batch, Double(learnRate), Clock.now() - start, seen))
    var better = 0
    for a in 0..<40 {
      let accuracy = Double(correct[a]) / Double(seen)
      let base = Double(baseline[a]) / Double(seen)
      if accuracy > base { better += 1 }
      say(
        String(
          format: "  %-20@ %5.1f%%  majority %5.1f%%  gain %+5.1f", CelebA.attributeNames[a] as NSString,
          100 * accuracy, 100 * base, 100 * (accuracy - base)))
    }
    say("learnability: \(better) of 40 attributes beat the majority-class baseline")
  }
}

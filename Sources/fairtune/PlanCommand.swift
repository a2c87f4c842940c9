// `fairtune plan`: the wall time and core-hours of each stage of `fairtune reproduce --preset P`
// on N nodes of C cores, from per-image costs measured here, and the peak memory of a rank.
import ArgumentParser
import CelebAFormat
import Data
import Experiment
import Foundation
import NN
import Support
import Tensors
import Training

struct PlanCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plan",
    abstract: "Estimate the wall time, core-hours and memory of `fairtune reproduce --preset P` on a cluster.",
    discussion: paragraphs("""
      The estimate is made from measurements taken now, on this machine, with the preset's model
      and image size (a few steps each, on random images): the seconds per image of a SimCLR
      pretraining step (two views, projection head, at the per-rank batch the cluster would
      use), of a fine-tuning step of each strategy (frozen weights get no gradients, as in
      training) and of an evaluation forward pass; and the seconds per image of making and
      packing synthetic data. Each stage's work is counted from the preset: pretraining epochs x
      train images; per strategy, trials x the mean drawn epochs x train images, a validation
      pass per epoch (validation images and the train images that set the thresholds) and an
      evaluation of every split per trial; the seed re-runs and the random-backbone probe
      likewise. Work measured on T threads here takes T / (N x C x e) of its time on the
      cluster, with e the data-parallel efficiency (--efficiency; 1 on a single rank). Data
      loading runs beside the compute and is not counted; the estimate assumes the cluster's
      cores are as fast as these.

      Peak memory: the resident size of this process after a pretraining step at the per-rank
      batch (the largest of the stages), i.e. what one rank needs.
      """))

  @Option(help: "tiny, small or paper.")
  var preset: ReproduceCommand.Preset = .paper

  @Option(help: "Nodes of the cluster.")
  var nodes: Int = 1

  @Option(help: "Cores per node.")
  var coresPerNode: Int = 2

  @Option(help: "MPI ranks per node (each uses cores-per-node / ranks-per-node threads).")
  var ranksPerNode: Int = 1

  @Option(help: "Data-parallel efficiency when a job spans more than one rank (measured: 0.87-0.95 for 2 ranks).")
  var efficiency: Double = 0.9

  @Option(help: "Timed steps per measurement (after one warm-up step).")
  var steps: Int = 3

  @Option(help: "Threads used for the measurements here (default: all cores).")
  var threads: Int?

  @Flag(help: "End with one line of JSON.")
  var json = false

  func validate() throws {
    guard nodes > 0 else { throw ValidationError("--nodes must be positive (got \(nodes)).") }
    guard coresPerNode > 0 else { throw ValidationError("--cores-per-node must be positive (got \(coresPerNode)).") }
    guard ranksPerNode > 0, ranksPerNode <= coresPerNode else {
      throw ValidationError("--ranks-per-node must be between 1 and --cores-per-node (got \(ranksPerNode)).")
    }
    guard efficiency > 0, efficiency <= 1 else { throw ValidationError("--efficiency must be in (0, 1] (got \(efficiency)).") }
    guard steps > 0 else { throw ValidationError("--steps must be positive (got \(steps)).") }
    if let t = threads, t <= 0 { throw ValidationError("--threads must be positive (got \(t)).") }
  }

  func run() throws {
    let s = ReproduceCommand.settings(preset)
    let here = threads ?? ProcessInfo.processInfo.activeProcessorCount
    BLAS.setThreads(here)
    Parallel.workers = here
    let ranks = nodes * ranksPerNode
    let options = s.modelSpec
    let pretrainBatch = max(1, s.pretrainBatch / ranks)
    let finetuneBatch = max(1, s.batch / ranks)
    print("plan for reproduce --preset \(preset.rawValue) on \(nodes) node(s) x \(coresPerNode) cores (\(ranks) rank(s)); measuring \(s.model) width \(s.width) at \(s.imageSize) px on \(here) thread(s) here")

    // Pretraining first: its peak resident size is the rank's peak.
    var configuration = options.configuration(classes: nil)
    let features = try ResNet(configuration).featureDimension
    configuration.projection = ProjectionSize(hidden: features, output: 128)
    let pretrainCost = try Self.secondsPerImage(configuration, strategy: nil, batch: pretrainBatch, views: 2, steps: steps, size: s.imageSize)
    let peak = Self.peakResidentBytes()
    print(String(format: "  pretraining step: %.2f ms per image at %d images per rank (x2 views); peak resident memory %.0f MiB", pretrainCost * 1000, pretrainBatch, Double(peak) / 1048576))
    var strategyCost: [Strategy: Double] = [:]
    for strategy in Strategy.allCases {
      strategyCost[strategy] = try Self.secondsPerImage(options.configuration(classes: 40), strategy: strategy, batch: finetuneBatch, views: 1, steps: steps, size: s.imageSize)
      print(String(format: "  %@ step: %.3f ms per image at %d images per rank", strategy.rawValue, strategyCost[strategy]! * 1000, finetuneBatch))
    }
    let evalCost = try Self.secondsPerImage(options.configuration(classes: 40), strategy: nil, batch: 256, views: 1, steps: steps, forwardOnly: true, size: s.imageSize)
    let dataCost = try Self.dataSecondsPerImage(synthSize: s.synthSize, imageSize: s.imageSize)
    print(String(format: "  evaluation: %.3f ms per image; synthetic data + packing: %.2f ms per image", evalCost * 1000, dataCost * 1000))

    // Work per stage, in seconds on `here` threads.
    let all = Double(s.train + s.val + s.test)
    let train = Double(s.train)
    let meanEpochs = Double(1 + s.maxEpochs) / 2
    let validationPass = Double(s.val + min(s.thresholdImages, s.train)) * evalCost
    func run(_ strategy: Strategy, epochs: Double) -> Double {
      epochs * (train * strategyCost[strategy]! + validationPass) + all * evalCost
    }
    let finetune = Strategy.allCases.reduce(0.0) { $0 + run($1, epochs: meanEpochs) }
    var stages: [(name: String, seconds: Double, parallel: Bool)] = [
      ("data + pack", all * dataCost, false),
      ("pretrain", Double(s.pretrainEpochs) * train * pretrainCost, true),
      ("sweep", Double(s.trials) * finetune, true),
      ("seeds", Double(s.seeds - 1) * finetune, true),
      ("balanced", Double(s.seeds) * run(.bnRecal, epochs: meanEpochs), true),
      ("probe", run(.frozen, epochs: meanEpochs), true),
      ("bn-statistics", 2048 * evalCost * 2, false),
      ("report", 10, false),
    ]
    if preset == .paper { stages[0].name = "pack (CelebA)" }
    let cores = Double(nodes * coresPerNode)
    let scale = Double(here) / (cores * (ranks > 1 ? efficiency : 1))
    print("")
    func row(_ name: String, _ wall: String, _ hours: String) -> String {
      name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(repeating: " ", count: max(0, 12 - wall.count)) + wall
        + String(repeating: " ", count: max(0, 12 - hours.count)) + hours
    }
    print(row("stage", "wall", "core-hours"))
    var totalWall = 0.0
    var rows: [[String: Any]] = []
    for stage in stages {
      // Stages that do not run data-parallel use one node's cores at most.
      let wall = stage.parallel ? stage.seconds * scale : stage.seconds * Double(here) / Double(coresPerNode)
      let coreHours = wall * cores / 3600
      totalWall += wall
      rows.append(["stage": stage.name, "wall_seconds": wall, "core_hours": coreHours])
      print(row(stage.name, Trainer.duration(wall), String(format: "%.2f", coreHours)))
    }
    print(row("total", Trainer.duration(totalWall), String(format: "%.2f", totalWall * cores / 3600)))
    print(String(format: "peak resident memory per rank: %.0f MiB (pretraining at %d images per rank, two views each)", Double(peak) / 1048576, pretrainBatch))
    if json {
      let object: [String: Any] = [
        "preset": preset.rawValue, "nodes": nodes, "cores_per_node": coresPerNode, "ranks": ranks, "threads_here": here,
        "stages": rows, "total_wall_seconds": totalWall, "peak_resident_bytes": peak,
        "seconds_per_image": ["pretrain": pretrainCost, "evaluation": evalCost, "data": dataCost]
          .merging(Dictionary(uniqueKeysWithValues: strategyCost.map { ($0.key.rawValue, $0.value) })) { a, _ in a },
      ]
      print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
    }
  }

  /// The peak resident set size of this process (bytes).
  static func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
  }

  /// Median seconds per image of a training step (the trainer's `TrainingStep`: forward, the
  /// loss, backward, SGD; NT-Xent over both views for `views` 2, attribute BCE otherwise) of
  /// `configuration` with `strategy` applied (nil: everything trains), or of a forward pass in
  /// evaluation mode.
  static func secondsPerImage(
    _ configuration: ResNetConfiguration, strategy: Strategy?, batch: Int, views: Int, steps: Int, forwardOnly: Bool = false,
    size: Int
  ) throws -> Double {
    let model = try ResNet(configuration, seed: 1)
    if let strategy { strategy.apply(to: model) }
    if forwardOnly { model.setBatchNormTraining(false) }
    let rows = batch * views
    let images = Tensor(shape: [rows, size, size, 3])
    var rng = SplitMix64(seed: 3)
    for i in 0..<images.count { images.data[i] = rng.normal() }
    let labels = Tensor(shape: [batch, model.outputDimension])
    for i in 0..<labels.count { labels.data[i] = rng.uniform() < 0.3 ? 1 : 0 }
    let trainingStep = TrainingStep.single(
      model, objective: views == 2 ? .simclr(temperature: 0.1) : .attributes,
      optimizer: SGD(model.registry.parameters { $0.requiresGradient }, learningRate: 1e-4))
    let share = TrainingBatch(images: images.data, labels: views == 2 ? nil : labels.data, count: batch)
    let input = FeatureMap(data: images.data, batch: rows, height: size, width: size, channels: 3)
    var times: [Double] = []
    for step in 0...steps {
      let start = Clock.now()
      if forwardOnly {
        _ = model.forward(input)
      } else {
        _ = try trainingStep(share, imageSize: size, globalBatch: batch)
      }
      if step > 0 { times.append(Clock.now() - start) }
    }
    return times.sorted()[times.count / 2] / Double(batch)
  }

  /// Seconds per image of `fairtune synth` and `fairtune pack` (the same library calls), from
  /// 200 images.
  static func dataSecondsPerImage(synthSize: Int, imageSize: Int) throws -> Double {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "fairtune-plan-\(getpid())")
    defer { try? FileManager.default.removeItem(at: directory) }
    let start = Clock.now()
    let plan = SynthesisPlan(train: 160, validation: 20, test: 20, imageSize: synthSize, seed: 1)
    let raw = try OutputDirectory(directory.appendingPathComponent("raw"), option: "plan")
    try Synthesizer.write(plan, labels: try Synthesizer.labels(plan, from: nil), into: raw) { _ in }
    try raw.commit()
    let packed = try OutputDirectory(directory.appendingPathComponent("packed"), option: "plan")
    _ = try Packer.pack(celebA: raw.destination, imageSize: imageSize, into: packed, skipBadImages: false)
    try packed.commit()
    return (Clock.now() - start) / 200
  }
}

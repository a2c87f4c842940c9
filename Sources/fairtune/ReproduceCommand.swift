// `fairtune reproduce`: the whole experiment from one command, stage by stage, resumable.
import ArgumentParser
import CelebAFormat
import Data
import Distributed
import Experiment
import Foundation
import Report
import Support
import Tensors
import Training

struct ReproduceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reproduce",
    abstract: "The whole pipeline: data, pack, SimCLR pretraining, a sweep over the five strategies and supervised, and the report.",
    discussion: paragraphs("""
      Presets:
        tiny    2,600 synthetic faces at 32 px, ResNet-18 at quarter width
                (small stem), 2 pretraining epochs, 2 trials of at most 1 epoch
                per model, 1 seed: minutes on a laptop.
        small   11,000 synthetic faces at 64 px (8,000 train), ResNet-18 at
                half width, 25 pretraining epochs at batch 256, 20 trials of at
                most 3 epochs per model with ASHA, 3 seeds: about an hour on 2
                cores.
        paper   CelebA (--celeba) at 64 px, ResNet-50, 100 pretraining epochs
                at batch 512, 20 trials of at most 20 epochs per model with
                ASHA, 3 seeds: a cluster job.

      Stages, each writing into OUT: data/ (synthetic CelebA-format files, unless --celeba),
      packed/, pretrain/, sweep/ (every trial, trials.csv, the best of each strategy), seeds/
      (the best settings of each strategy trained again with other seeds), probe-random/ (the
      frozen linear probe on a randomly initialised backbone: what pretraining added),
      analysis/bn-statistics.md (the pretrained BatchNorm statistics against the fine-tuning
      data's, and how far each strategy moved them), and report/ (table1.md, figure1.svg,
      timing.md, findings.md with the paper's findings checked with bootstrap intervals and
      seed spread, pretrain-loss.svg, index.html). Re-running the same command skips finished
      stages and resumes the one that was interrupted. Under mpirun the training stages run
      data-parallel (the sweep's rank 0 coordinates).
      """))

  enum Preset: String, ExpressibleByArgument, CaseIterable {
    case tiny, small, paper
  }

  @Option(help: "tiny, small or paper.")
  var preset: Preset = .tiny

  @Option(help: "The real CelebA (a CelebA-format folder) instead of synthetic faces.")
  var celeba: String?

  @Option(help: "The run directory.")
  var out: String

  @Option(help: "Seed of everything.")
  var seed: UInt64 = 0

  @Option(help: "Fine-tuning seeds per strategy: the sweep's best settings are trained again with N-1 more seeds (default: 1 for tiny, 3 otherwise).")
  var seeds: Int?

  @Option(help: "Ranks per sweep trial under mpirun (the sweep's rank 0 coordinates; the others form groups of this size).")
  var groupSize: Int = 1

  @OptionGroup var distributed: DistributedOptions

  var seedCount: Int { seeds ?? settings.seeds }

  /// Steps each strategy runs in the epoch-times stage (or an epoch, when that is fewer).
  static let timedSteps = 12

  struct Settings {
    var train: Int, val: Int, test: Int, synthSize: Int, imageSize: Int
    var model: String, width: String, stem: String
    var pretrainEpochs: Int, pretrainBatch: Int, trials: Int, maxEpochs: Int, batch: Int
    var seeds: Int, bootstrap: Int
    /// Train images that set the thresholds of the sweep's per-epoch validation metric.
    var thresholdImages: Int
  }

  var settings: Settings { Self.settings(preset) }

  static func settings(_ preset: Preset) -> Settings {
    switch preset {
    case .tiny:
      return Settings(train: 2000, val: 300, test: 300, synthSize: 48, imageSize: 32, model: "resnet18", width: "0.25", stem: "small",
        pretrainEpochs: 2, pretrainBatch: 64, trials: 2, maxEpochs: 1, batch: 64, seeds: 1, bootstrap: 200, thresholdImages: 2000)
    case .small:
      // About an hour on 2 cores: 8,000 train images keep the 100 non-frozen trials' epochs (at
      // least one each, ASHA's first rung) near half an hour, and 25 pretraining epochs near a quarter.
      return Settings(train: 8000, val: 1000, test: 2000, synthSize: 64, imageSize: 64, model: "resnet18", width: "0.5", stem: "imagenet",
        pretrainEpochs: 25, pretrainBatch: 256, trials: 20, maxEpochs: 3, batch: 128, seeds: 3, bootstrap: 1000, thresholdImages: 2000)
    case .paper:
      return Settings(train: 162_770, val: 19_867, test: 19_962, synthSize: 64, imageSize: 64, model: "resnet50", width: "1", stem: "imagenet",
        pretrainEpochs: 100, pretrainBatch: 512, trials: 20, maxEpochs: 20, batch: 256, seeds: 3, bootstrap: 1000, thresholdImages: 4000)
    }
  }

  func validate() throws {
    if let seeds, seeds < 1 { throw ValidationError("--seeds must be at least 1 (got \(seeds)).") }
    if let celeba, !FileManager.default.fileExists(atPath: celeba + "/list_attr_celeba.txt") {
      throw ValidationError("--celeba \(celeba) has no list_attr_celeba.txt: give the folder that holds CelebA's files.")
    }
  }

  func run() throws {
    let s = settings
    let start = Date()
    let world = try MPICommunicator.world(timeout: distributed.timeout)
    let root = world.rank == 0
    func stage(_ name: String, done: Bool, _ body: () throws -> Void) throws {
      if done {
        if root { print("[\(name)] done already, skipped") }
        return
      }
      if root { print("[\(name)] \(String(format: "%.0f", Date().timeIntervalSince(start))) s") }
      let begin = Date()
      try body()
      try world.barrier()
      if root {
        // OUT/stages.json: each stage's wall seconds (the latest run of it), for `fairtune plan` checks.
        let path = out + "/stages.json"
        var times = ((try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))) as? [String: Double]) ?? [:]
        times[name] = Date().timeIntervalSince(begin)
        if let data = try? JSONSerialization.data(withJSONObject: times, options: [.prettyPrinted, .sortedKeys]) {
          try? AtomicFile.write([UInt8](data), to: path)
        }
      }
    }
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let raw = celeba ?? out + "/data"
    let packed = out + "/packed"
    let model = ["--model", s.model, "--width", s.width, "--stem", s.stem, "--image-size", "\(s.imageSize)"]
    let parallel = distributed.threads.map { ["--threads", "\($0)"] } ?? []

    try stage("data", done: FileManager.default.fileExists(atPath: raw + "/list_attr_celeba.txt")) {
      guard root else { return }
      let plan = SynthesisPlan(train: s.train, validation: s.val, test: s.test, imageSize: s.synthSize, seed: seed)
      let output = try OutputDirectory(URL(fileURLWithPath: raw), option: "--out")
      let begin = Clock.now()
      try Synthesizer.write(plan, labels: try Synthesizer.labels(plan, from: nil), into: output) { _ in }
      try output.commit()
      print(String(format: "wrote %d synthetic faces (%d train, %d val, %d test) to %@ in %.1f s", plan.count, s.train, s.val, s.test, raw, Clock.now() - begin))
    }
    try stage("pack", done: FileManager.default.fileExists(atPath: packed + "/labels.bin")) {
      guard root else { return }
      let output = try OutputDirectory(URL(fileURLWithPath: packed), option: "--out")
      let report = try Packer.pack(celebA: URL(fileURLWithPath: raw), imageSize: s.imageSize, into: output, skipBadImages: false)
      try output.commit()
      print(String(format: "packed %d images at %dx%d into %@ in %.1f s", report.packed, s.imageSize, s.imageSize, packed, report.seconds))
    }
    let pretrained = out + "/pretrain/final.ckpt"
    try stage("pretrain", done: FileManager.default.fileExists(atPath: pretrained)) {
      try PretrainCommand.parse(["--data", packed, "--out", out + "/pretrain", "--batch", "\(s.pretrainBatch)",
        "--epochs", "\(s.pretrainEpochs)", "--seed", "\(seed)", "--warmup-epochs", "\(Double(s.pretrainEpochs) / 10)"] + model + parallel).run()
    }
    let strategies = Strategy.allCases.map(\.rawValue)
    // Every strategy and supervised get the same budget: the same number of trials from the same
    // space, the same largest number of epochs, the same early stopping.
    let asha = s.maxEpochs > 1 ? ["--scheduler", "asha", "--asha-eta", "3", "--asha-min-epochs", "1"] : []
    var sweep = try SweepCommand.parse(["--data", packed, "--from", pretrained, "--strategies", strategies.joined(separator: ","),
      "--trials", "\(s.trials)", "--max-epochs", "\(s.maxEpochs)", "--batch", "\(s.batch)", "--seed", "\(seed)",
      "--threshold-images", "\(s.thresholdImages)",
      "--group-size", "\(groupSize)", "--out", out + "/sweep"] + asha + model + parallel)
    sweep.distributed = distributed
    try stage("sweep", done: false) { try sweep.run() }
    let journal = try Journal(path: out + "/sweep/journal.jsonl", readOnly: true)
    let search = out + "/analysis/search.md"
    if root {
      let budget = "Every strategy and supervised drew \(s.trials) trials from the same search space (`fairtune sweep --help`; docs/search.md) at batch \(s.batch), each of at most \(s.maxEpochs) epoch\(s.maxEpochs == 1 ? "" : "s")"
        + (asha.isEmpty ? "." : "; ASHA (eta 3, rungs from the first epoch) stopped the trials that fell behind those of their strategy at a rung, and a stopped trial keeps its metric.")
        + " The paper's equivalent compute budget: no strategy gets more trials or epochs than another. frozen solves its head to convergence, so its draws differ only in weight decay. The metric is the validation mean F1 with thresholds from train."
      try FileManager.default.createDirectory(atPath: out + "/analysis", withIntermediateDirectories: true)
      try AtomicFile.write(Array(journal.summary(strategies: strategies, budget: budget).utf8), to: search)
    }
    let best = Dictionary(uniqueKeysWithValues: strategies.compactMap { s in journal.best(strategy: s).map { (s, $0) } })

    // The fine-tuning stage again with other seeds: each strategy's best settings, seeds k = 1..<N.
    let seedRuns = strategies.flatMap { s in (1..<max(seedCount, 1)).compactMap { k in best[s].map { (s, k, $0) } } }
    try stage("seeds", done: seedRuns.allSatisfy { FileManager.default.fileExists(atPath: out + "/seeds/\($0.0)-seed\($0.1)/run.json") }) {
      for (strategy, k, record) in seedRuns {
        let directory = out + "/seeds/\(strategy)-seed\(k)"
        if FileManager.default.fileExists(atPath: directory + "/run.json") { continue }
        if root { print("  \(strategy), seed \(k) of \(seedCount): the settings of \(record.id)") }
        var command = try FinetuneCommand.parse(["--strategy", strategy] + (strategy == "supervised" ? [] : ["--from", pretrained])
          + SweepCommand.trainingArguments(record.settings, data: packed, out: directory, batch: s.batch, seed: record.settings.seed + UInt64(k) * 1000)
          + model + parallel)
        command.distributed = distributed
        try command.run()
        try world.barrier()
      }
    }
    // The control of pretraining: the same linear probe on a randomly initialised backbone.
    let probe = out + "/probe-random"
    if let frozen = best["frozen"] {
      try stage("probe", done: FileManager.default.fileExists(atPath: probe + "/run.json")) {
        var command = try FinetuneCommand.parse(["--strategy", "frozen", "--random-backbone"]
          + SweepCommand.trainingArguments(frozen.settings, data: packed, out: probe, batch: s.batch) + model + parallel)
        command.distributed = distributed
        try command.run()
      }
    }
    let analysis = out + "/analysis"
    // Each strategy's time per epoch, side by side: the same data, batch and settings (SGD at a
    // constant rate), a few steps each; the sweep's times are its draws' epochs.
    let epochTimes = analysis + "/epoch-times.json"
    try stage("epoch-times", done: FileManager.default.fileExists(atPath: epochTimes)) {
      let stepsPerEpoch = (s.train + s.batch - 1) / s.batch
      let steps = min(stepsPerEpoch, Self.timedSteps)
      var seconds: [Strategy: Double] = [:]
      for strategy in strategies {
        let directory = out + "/epoch-times/\(strategy)"
        if !FileManager.default.fileExists(atPath: directory + "/run.json") {
          var command = try FinetuneCommand.parse(["--strategy", strategy] + (strategy == "supervised" ? [] : ["--from", pretrained])
            + ["--data", packed, "--out", directory, "--batch", "\(s.batch)", "--epochs", "1", "--steps", "\(steps)", "--optimizer", "sgd",
              "--lr", "1", "--schedule", "constant", "--seed", "\(seed)"] + model + parallel)
          command.distributed = distributed
          try command.run()
          try world.barrier()
        }
        if root, let kind = Strategy(rawValue: strategy) {
          seconds[kind] = try EpochTimes.perEpoch(run: URL(fileURLWithPath: directory), strategy: kind, stepsPerEpoch: stepsPerEpoch)
        }
      }
      if root {
        try FileManager.default.createDirectory(atPath: analysis, withIntermediateDirectories: true)
        try AtomicFile.write([UInt8](EpochTimes(seconds: seconds).json), to: epochTimes)
      }
    }
    // The paper's mechanism: BatchNorm statistics of the pretrained backbone vs the data's.
    try stage("bn-statistics", done: FileManager.default.fileExists(atPath: analysis + "/bn-statistics.md")) {
      guard root else { return }
      let modelOptions = try ModelOptions.parse(model)
      let dataset = try PackedDataset(path: URL(fileURLWithPath: packed))
      let pretrainedModel = try FinetuneCommand.model(modelOptions, pretrained: FinetuneCommand.pretrained(pretrained), seed: seed)
      let images = Array(dataset.train.prefix(2048))
      let threads = distributed.threadsPerRank
      Parallel.workers = threads
      let data = BatchNormDrift.measure(pretrainedModel, dataset: dataset, images: images, batch: 128, threads: threads)
      var models: [(label: String, statistics: [LayerStatistics])] = []
      for strategy in strategies {
        guard let record = best[strategy] else { continue }
        let tuned = try FinetuneCommand.model(modelOptions, pretrained: FinetuneCommand.pretrained(out + "/sweep/trials/\(record.id)/final.ckpt"), seed: seed)
        models.append((strategy, BatchNormDrift.running(tuned)))
      }
      let (markdown, csv) = BatchNormDrift.markdown(data: data, pretrained: BatchNormDrift.running(pretrainedModel), models: models, images: images.count)
      try FileManager.default.createDirectory(atPath: analysis, withIntermediateDirectories: true)
      try AtomicFile.write(Array(csv.utf8), to: analysis + "/bn-statistics.csv")
      try AtomicFile.write(Array(markdown.utf8), to: analysis + "/bn-statistics.md")
    }
    try stage("report", done: false) {
      guard root else { return }
      let runs = strategies.compactMap { best[$0].map { out + "/sweep/trials/" + $0.id } }
      let seeds = seedRuns.map { out + "/seeds/\($0.0)-seed\($0.1)" }
      try ReportCommand.parse(["--runs"] + runs + ["--attributes", raw + "/list_attr_celeba.txt",
        "--partition", raw + "/list_eval_partition.txt", "--out", out + "/report", "--bootstrap", "\(s.bootstrap)", "--findings",
        "--pretrain", out + "/pretrain", "--include", search, analysis + "/bn-statistics.md", "--epoch-times", epochTimes]
        + (seeds.isEmpty ? [] : ["--seed-runs"] + seeds) + (best["frozen"] == nil ? [] : ["--probe", probe])).run()
    }
    if root { print(String(format: "reproduce --preset %@: done in %.0f s; open %@/report/index.html", preset.rawValue, Date().timeIntervalSince(start), out)) }
  }
}

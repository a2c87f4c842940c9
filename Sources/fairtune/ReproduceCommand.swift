// `fairtune reproduce`: the whole experiment from one command, stage by stage, resumable. Each
// stage builds the library's jobs (PretrainJob, SweepJob, FineTuneJob, ReportJob) from the preset.
import ArgumentParser
import CelebAFormat
import Data
import Distributed
import Experiment
import Fairness
import Foundation
import Report
import Support
import Tensors
import Training

struct ReproduceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reproduce",
    abstract: "The whole pipeline: data, pack, SimCLR pretraining, a sweep over the five strategies, bn-recal and supervised, and the report.",
    discussion: paragraphs("""
      Presets:
        tiny    2,600 synthetic faces at 32 px, ResNet-18 at quarter width
                (small stem), 10 pretraining epochs, 2 trials of at most 1 epoch
                per model, 1 seed: minutes on a laptop.
        small   11,000 synthetic faces at 64 px (8,000 train), ResNet-18 at
                half width, 25 pretraining epochs at batch 256, 20 trials of at
                most 3 epochs per model with ASHA, 3 seeds: about an hour on 2
                cores.
        paper   CelebA (--celeba) at 64 px, ResNet-50, 100 pretraining epochs
                at batch 512, 20 trials of at most 20 epochs per model with
                ASHA, 3 seeds: a cluster job.

      Every preset pretrains SimCLR with crops that keep at least 70% of the image (the recipe
      ablation of docs/pretraining.md; SimCLR's 0.08 loses the small attributes of the faces), and
      watches the backbone with the kNN monitor (pretrain --monitor-images).

      Stages, each writing into OUT: data/ (synthetic CelebA-format files, unless --celeba),
      packed/, pretrain/, sweep/ (every trial, trials.csv, the best of each strategy), seeds/
      (the best settings of each strategy trained again with other seeds), balanced/ (bn-recal
      with --bn-balance, at the best bn-recal settings and the same seeds), probe-random/ (the
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

  @Option(help: "fp32, bf16 (fp32 where the CPU or this build has no bfloat16 kernels, said at the start) or bf16-emulated (bfloat16's numerics, slower than fp32), for every training stage.")
  var precision: PrecisionRequest = .fp32

  @Option(help: "The attribute of the balanced recalibration run beside bn-recal (bn-recal with --bn-balance; one of the 40).")
  var bnBalance: String = "Male"

  @Option(help: "SimCLR pretraining epochs instead of the preset's (10, 25 or 100): more buys a better backbone at the pretrain stage's time, which grows in proportion. A finished pretrain stage is kept as it is.")
  var pretrainEpochs: Int?

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
    /// Train images of the pretraining monitor's kNN bank (half as many val images are classified).
    var monitorImages: Int
    /// SimCLR's settings that the recipe ablation (docs/pretraining.md) changed: the smallest
    /// crop, the temperature, the learning rate per 256 images.
    var minCropScale = 0.7
    var temperature = 0.1
    var pretrainLearningRate = 0.3

    var modelSpec: ModelSpec { ModelSpec(model: model, width: Double(width)!, stem: stem, imageSize: imageSize) }
  }

  var settings: Settings {
    var s = Self.settings(preset)
    if let pretrainEpochs { s.pretrainEpochs = pretrainEpochs }
    return s
  }

  static func settings(_ preset: Preset) -> Settings {
    switch preset {
    case .tiny:
      return Settings(train: 2000, val: 300, test: 300, synthSize: 48, imageSize: 32, model: "resnet18", width: "0.25", stem: "small",
        pretrainEpochs: 10, pretrainBatch: 64, trials: 2, maxEpochs: 1, batch: 64, seeds: 1, bootstrap: 200, thresholdImages: 2000, monitorImages: 192,
        // At batch 64, SimCLR's square-root rule (0.075 x sqrt(64) = 0.6) rather than the linear
        // one (0.3 x 64 / 256 = 0.075, at which the loss stays at chance); 10 epochs, after which
        // the probe on the SimCLR backbone is above the random one's (4 were not): docs/pretraining.md.
        pretrainLearningRate: 2.4)
    case .small:
      // About an hour on 2 cores: 8,000 train images keep the 100 non-frozen trials' epochs (at
      // least one each, ASHA's first rung) near half an hour, and 25 pretraining epochs near a quarter.
      return Settings(train: 8000, val: 1000, test: 2000, synthSize: 64, imageSize: 64, model: "resnet18", width: "0.5", stem: "imagenet",
        pretrainEpochs: 25, pretrainBatch: 256, trials: 20, maxEpochs: 3, batch: 128, seeds: 3, bootstrap: 1000, thresholdImages: 2000, monitorImages: 768)
    case .paper:
      return Settings(train: 162_770, val: 19_867, test: 19_962, synthSize: 64, imageSize: 64, model: "resnet50", width: "1", stem: "imagenet",
        pretrainEpochs: 100, pretrainBatch: 512, trials: 20, maxEpochs: 20, batch: 256, seeds: 3, bootstrap: 1000, thresholdImages: 4000, monitorImages: 2048)
    }
  }

  func validate() throws {
    if let seeds, seeds < 1 { throw ValidationError("--seeds must be at least 1 (got \(seeds)).") }
    if let pretrainEpochs, pretrainEpochs < 1 { throw ValidationError("--pretrain-epochs must be at least 1 (got \(pretrainEpochs)).") }
    if let celeba, !FileManager.default.fileExists(atPath: celeba + "/list_attr_celeba.txt") {
      throw ValidationError("--celeba \(celeba) has no list_attr_celeba.txt: give the folder that holds CelebA's files.")
    }
    try checkBalance(bnBalance, strategies: [.bnRecal])
  }

  /// What every training stage multiplies.
  var chosenPrecision: Precision { precision.precision }

  func run() throws {
    let s = settings
    let start = Date()
    let launch = try distributed.launch()
    let world = launch.communicator
    let root = launch.isRoot
    func stage(_ name: String, done: Bool, _ body: () throws -> Void) throws {
      if done {
        launch.say("[\(name)] done already, skipped")
        return
      }
      launch.say("[\(name)] \(String(format: "%.0f", Date().timeIntervalSince(start))) s")
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
    do {
      try stages(s, launch: launch, stage: stage)
    } catch {
      launch.fail(error)
    }
    launch.say(String(format: "reproduce --preset %@: done in %.0f s; open %@/report/index.html", preset.rawValue, Date().timeIntervalSince(start), out))
  }

  /// Every stage in turn, each through `stage` (which skips a finished one and times it).
  func stages(_ s: Settings, launch: Launch, stage: (String, Bool, () throws -> Void) throws -> Void) throws {
    let world = launch.communicator
    let root = launch.isRoot
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let raw = celeba ?? out + "/data"
    let packed = out + "/packed"

    try stage("data", FileManager.default.fileExists(atPath: raw + "/list_attr_celeba.txt")) {
      guard root else { return }
      let plan = SynthesisPlan(train: s.train, validation: s.val, test: s.test, imageSize: s.synthSize, seed: seed)
      let output = try OutputDirectory(URL(fileURLWithPath: raw), option: "--out")
      let begin = Clock.now()
      try Synthesizer.write(plan, labels: try Synthesizer.labels(plan, from: nil), into: output) { _ in }
      try output.commit()
      launch.say(String(format: "wrote %d synthetic faces (%d train, %d val, %d test) to %@ in %.1f s", plan.count, s.train, s.val, s.test, raw, Clock.now() - begin))
    }
    try stage("pack", FileManager.default.fileExists(atPath: packed + "/labels.bin")) {
      guard root else { return }
      let output = try OutputDirectory(URL(fileURLWithPath: packed), option: "--out")
      let report = try Packer.pack(celebA: URL(fileURLWithPath: raw), imageSize: s.imageSize, into: output, skipBadImages: false)
      try output.commit()
      launch.say(String(format: "packed %d images at %dx%d into %@ in %.1f s", report.packed, s.imageSize, s.imageSize, packed, report.seconds))
    }
    let model = s.modelSpec
    let dataset = try TrainingSession.open(packed, imageSize: s.imageSize, run: out, communicator: world)
    func session(_ spec: TrainingSpec, defining: [String: String]) throws -> TrainingSession {
      try launch.session(dataset, spec: spec, defining: defining, parallel: distributed.parallel)
    }
    if let notice = precision.resolved.notice { launch.say(notice) }
    /// A fine-tuning run, skipped when its run.json exists.
    func finetune(_ job: FineTuneJob) throws {
      guard !FileManager.default.fileExists(atPath: job.spec.out + "/run.json") else { return }
      var job = job
      job.spec.precision = chosenPrecision
      try job.run(try job.makeModel(), in: try session(job.spec, defining: job.defining))
      try world.barrier()
    }
    let pretrained = out + "/pretrain/final.ckpt"
    try stage("pretrain", FileManager.default.fileExists(atPath: pretrained)) {
      var spec = TrainingSpec(data: packed, out: out + "/pretrain")
      spec.batch = s.pretrainBatch
      spec.epochs = s.pretrainEpochs
      spec.seed = seed
      spec.warmupEpochs = Double(s.pretrainEpochs) / 10
      spec.learningRate = s.pretrainLearningRate
      spec.precision = chosenPrecision
      var job = PretrainJob(spec: spec, model: model)
      job.monitorImages = s.monitorImages
      job.minimumCropScale = s.minCropScale
      job.temperature = s.temperature
      try job.run(in: try session(spec, defining: job.defining))
    }
    let backbone = try PretrainedBackbone.read(pretrained)
    let strategies = Strategy.allCases.map(\.rawValue)
    // Every strategy and supervised get the same budget: the same number of trials from the same
    // space, the same largest number of epochs, the same early stopping.
    let asha = s.maxEpochs > 1 ? Asha(eta: 3, minEpochs: 1) : nil
    try stage("sweep", false) {
      let plan = SweepPlan(
        strategies: strategies, trials: s.trials, groupSize: groupSize, maxEpochs: s.maxEpochs, maxFailures: s.trials, seed: seed,
        space: .standard, heartbeatTimeout: 600, asha: asha)
      var job = SweepJob(plan: plan, data: packed, out: out + "/sweep", model: model, pretrained: backbone, batch: s.batch)
      job.thresholdImages = s.thresholdImages
      job.precision = chosenPrecision
      job.parallel = distributed.parallel
      job.beforeFirstStep = { launch.injectFaults() }
      try job.checkWhatTrialsShare(dataset: dataset, ranks: world.size)
      let empty = try job.run(dataset: dataset, world: world)
      if !empty.isEmpty {
        throw SweepError.noResults(strategies: empty.map { "\($0.strategy)\($0.reason.map { " (last failure: \($0))" } ?? "")" }, run: out + "/sweep")
      }
    }
    let journal = try Journal(path: out + "/sweep/journal.jsonl", readOnly: true)
    let search = out + "/analysis/search.md"
    if root {
      let budget = "Every strategy and supervised drew \(s.trials) trials from the same search space (`fairtune sweep --help`; docs/search.md) at batch \(s.batch), each of at most \(s.maxEpochs) epoch\(s.maxEpochs == 1 ? "" : "s")"
        + (asha == nil ? "." : "; ASHA (eta 3, rungs from the first epoch) stopped the trials that fell behind those of their strategy at a rung, and a stopped trial keeps its metric.")
        + " The paper's equivalent compute budget: no strategy gets more trials or epochs than another. frozen solves its head to convergence, so its draws differ only in weight decay. The metric is the validation mean F1 with thresholds from train."
      try FileManager.default.createDirectory(atPath: out + "/analysis", withIntermediateDirectories: true)
      try AtomicFile.write(Array(journal.summary(strategies: strategies, budget: budget).utf8), to: search)
    }
    let best = Dictionary(uniqueKeysWithValues: strategies.compactMap { s in journal.best(strategy: s).map { (s, $0) } })
    /// A fine-tuning run of `strategy` with `spec`, on the pretrained backbone unless supervised.
    func job(_ strategy: Strategy, _ spec: TrainingSpec) -> FineTuneJob {
      FineTuneJob(strategy: strategy, spec: spec, model: model, pretrained: strategy.startsFromPretrainedBackbone ? backbone : nil)
    }

    // The fine-tuning stage again with other seeds: each strategy's best settings, seeds k = 1..<N.
    let seedRuns = strategies.flatMap { s in (1..<max(seedCount, 1)).compactMap { k in best[s].map { (s, k, $0) } } }
    try stage("seeds", seedRuns.allSatisfy { FileManager.default.fileExists(atPath: out + "/seeds/\($0.0)-seed\($0.1)/run.json") }) {
      for (strategy, k, record) in seedRuns {
        let directory = out + "/seeds/\(strategy)-seed\(k)"
        if FileManager.default.fileExists(atPath: directory + "/run.json") { continue }
        launch.say("  \(strategy), seed \(k) of \(seedCount): the settings of \(record.id)")
        try finetune(job(Strategy(rawValue: strategy)!,
          .trial(record.settings, data: packed, out: directory, batch: s.batch, seed: record.settings.seed + UInt64(k) * 1000)))
      }
    }
    // bn-recal balanced on an attribute, at the best bn-recal settings and seeds: paired with it.
    let balancedName = "bn-recal-" + bnBalance.lowercased()
    let balancedMain = out + "/balanced/" + balancedName
    let balancedSeeds = (1..<max(seedCount, 1)).map { out + "/seeds/\(balancedName)-seed\($0)" }
    if let recal = best[Strategy.bnRecal.rawValue] {
      try stage("balanced", ([balancedMain] + balancedSeeds).allSatisfy { FileManager.default.fileExists(atPath: $0 + "/run.json") }) {
        for (k, directory) in ([balancedMain] + balancedSeeds).enumerated() {
          launch.say("  bn-recal balanced on \(bnBalance), seed \(k) of \(seedCount): the settings of \(recal.id)")
          var balanced = job(.bnRecal, .trial(recal.settings, data: packed, out: directory, batch: s.batch, seed: recal.settings.seed + UInt64(k) * 1000))
          balanced.bnBalance = bnBalance
          // The sweep's bn-recal trials ordered their pass by the sweep's seed.
          if k == 0 { balanced.recalibrationSeed = seed }
          try finetune(balanced)
        }
      }
    }
    // The control of pretraining: the same linear probe on a randomly initialised backbone.
    let probe = out + "/probe-random"
    if let frozen = best["frozen"] {
      try stage("probe", FileManager.default.fileExists(atPath: probe + "/run.json")) {
        var probeJob = job(.frozen, .trial(frozen.settings, data: packed, out: probe, batch: s.batch))
        probeJob.pretrained = nil
        probeJob.randomBackbone = true
        try finetune(probeJob)
      }
    }
    let analysis = out + "/analysis"
    // Each strategy's time per epoch, side by side: the same data, batch and settings (SGD at a
    // constant rate), a few steps each; the sweep's times are its draws' epochs.
    let epochTimes = analysis + "/epoch-times.json"
    try stage("epoch-times", FileManager.default.fileExists(atPath: epochTimes)) {
      let stepsPerEpoch = (s.train + s.batch - 1) / s.batch
      var seconds: [Strategy: Double] = [:]
      for strategy in Strategy.allCases {
        let directory = out + "/epoch-times/\(strategy.rawValue)"
        var spec = TrainingSpec(data: packed, out: directory)
        spec.batch = s.batch
        spec.steps = min(stepsPerEpoch, Self.timedSteps)
        spec.optimizer = .sgd
        spec.learningRate = 1
        spec.schedule = .constant
        spec.seed = seed
        try finetune(job(strategy, spec))
        if root { seconds[strategy] = try EpochTimes.perEpoch(run: URL(fileURLWithPath: directory), strategy: strategy, stepsPerEpoch: stepsPerEpoch) }
      }
      if root {
        try FileManager.default.createDirectory(atPath: analysis, withIntermediateDirectories: true)
        try AtomicFile.write([UInt8](EpochTimes(seconds: seconds).json), to: epochTimes)
      }
    }
    // The paper's mechanism: BatchNorm statistics of the pretrained backbone vs the data's.
    try stage("bn-statistics", FileManager.default.fileExists(atPath: analysis + "/bn-statistics.md")) {
      guard root else { return }
      let pretrainedModel = try FineTuning.model(model, pretrained: backbone, seed: seed)
      let images = Array(dataset.train.prefix(2048))
      let threads = distributed.threadsPerRank
      Parallel.workers = threads
      let data = BatchNormDrift.measure(pretrainedModel, dataset: dataset, images: images, batch: 128, threads: threads)
      var models: [(label: String, statistics: [LayerStatistics])] = []
      for strategy in strategies {
        guard let record = best[strategy] else { continue }
        let tuned = try FineTuning.model(model, pretrained: PretrainedBackbone.read(out + "/sweep/trials/\(record.id)/final.ckpt"), seed: seed)
        models.append((strategy, BatchNormDrift.running(tuned)))
      }
      let (markdown, csv) = BatchNormDrift.markdown(data: data, pretrained: BatchNormDrift.running(pretrainedModel), models: models, images: images.count)
      try FileManager.default.createDirectory(atPath: analysis, withIntermediateDirectories: true)
      try AtomicFile.write(Array(csv.utf8), to: analysis + "/bn-statistics.csv")
      try AtomicFile.write(Array(markdown.utf8), to: analysis + "/bn-statistics.md")
    }
    try stage("report", false) {
      guard root else { return }
      let balanced = best[Strategy.bnRecal.rawValue] == nil ? [] : [balancedMain]
      var report = ReportJob(runs: strategies.compactMap { best[$0].map { out + "/sweep/trials/" + $0.id } } + balanced, out: out + "/report")
      report.attributes = raw + "/list_attr_celeba.txt"
      report.partition = raw + "/list_eval_partition.txt"
      report.bootstrap = BootstrapOptions(resamples: s.bootstrap, seed: 0)
      report.findings = true
      report.pretrain = out + "/pretrain"
      report.include = [search, analysis + "/bn-statistics.md"]
      report.epochTimes = epochTimes
      report.seedRuns = seedRuns.map { out + "/seeds/\($0.0)-seed\($0.1)" } + (balanced.isEmpty ? [] : balancedSeeds)
      report.probe = best["frozen"] == nil ? nil : probe
      for line in try report.run() { launch.say(line) }
    }
  }
}

// reproduce's stages as data, and the job that runs them: `fairtune reproduce` executes
// `ReproduceStage.allCases` in order and `fairtune plan` costs the same list (ClusterPlan.swift),
// so the two cannot drift. What a stage does, when it is done and what it costs are exhaustive
// switches on the stage.
import CelebAFormat
import Data
import Distributed
import Experiment
import Fairness
import Foundation
import Report
import Support
import Training

/// A stage of `fairtune reproduce`, in the order they run.
public enum ReproduceStage: String, CaseIterable, Sendable {
  case data, pack, pretrain, sweep
  case convergedHeads = "converged-heads"
  case seeds, balanced, probe, backbones
  case epochTimes = "epoch-times"
  case bnStatistics = "bn-statistics"
  case report

  /// What the stage writes into OUT, for `reproduce --help` (a line of at most 60 characters).
  public var writes: String {
    switch self {
    case .data: return "data/: synthetic CelebA-format faces (unless --celeba)"
    case .pack: return "packed/: the images decoded, cropped and resized once"
    case .pretrain: return "pretrain/: SimCLR, watched by the kNN monitor"
    case .sweep: return "sweep/: every trial, trials.csv, each strategy's best"
    case .convergedHeads: return "converged/: each best model's head solved by L-BFGS"
    case .seeds: return "seeds/: the best settings again with other seeds"
    case .balanced: return "balanced/: bn-recal with --bn-balance at its best settings"
    case .probe: return "probe-random/: the linear probe on a random backbone"
    case .backbones: return "backbones/: more backbones, each strategy fine-tuned on each"
    case .epochTimes: return "analysis/epoch-times.json: each strategy's time per epoch"
    case .bnStatistics: return "analysis/bn-statistics.md: pretrained vs data statistics"
    case .report: return "report/: Table 1, Figure 1, timing, findings, index.html"
    }
  }

  /// The stages and what each writes, one line each.
  public static var summary: String {
    allCases.map { "  " + $0.rawValue.padding(toLength: 17, withPad: " ", startingAt: 0) + $0.writes }.joined(separator: "\n")
  }
}

/// The whole experiment in one run directory, stage by stage, resumable.
public final class ReproduceJob {
  public let preset: Preset
  public var settings: PresetSettings
  public let out: String
  /// A CelebA-format folder instead of synthetic faces.
  public var celeba: String?
  public var seed: UInt64 = 0
  /// Fine-tuning seeds per strategy (the sweep's best settings, trained again with N-1 more).
  public var seeds: Int
  public var precision = PrecisionRequest.fp32
  /// The attribute of the balanced recalibration run.
  public var bnBalance = "Male"
  /// Ranks per sweep trial.
  public var groupSize = 1
  public var parallel = DataParallelSettings()
  public var threadsPerRank = 1

  public init(preset: Preset, out: String) {
    self.preset = preset
    self.settings = preset.settings
    self.out = out
    self.seeds = preset.settings.seeds
  }

  // What the stages hand on: opened, read or computed once, by the first stage that needs it.
  private var launch: Launch!
  private lazy var raw = celeba ?? out + "/data"
  private var packed: String { out + "/packed" }
  private var pretrained: String { out + "/pretrain/final.ckpt" }
  private var analysis: String { out + "/analysis" }
  private var search: String { analysis + "/search.md" }
  private var epochTimes: String { analysis + "/epoch-times.json" }
  private var probe: String { out + "/probe-random" }
  private var balancedName: String { "bn-recal-" + bnBalance.lowercased() }
  private var balancedRuns: [String] {
    [out + "/balanced/" + balancedName] + (1..<max(seeds, 1)).map { out + "/seeds/\(balancedName)-seed\($0)" }
  }
  private var openedDataset: PackedDataset?
  private var readBackbone: PretrainedBackbone?
  private var readBest: [Strategy: TrialRecord]?

  private var strategies: [Strategy] { Strategy.allCases }

  /// Runs every stage not yet done, each timed into OUT/stages.json; `say` prints on rank 0.
  public func run(_ launch: Launch) throws {
    self.launch = launch
    let start = Date()
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    if let notice = precision.resolved.notice { launch.say(notice) }
    for stage in ReproduceStage.allCases {
      if try isDone(stage) {
        launch.say("[\(stage.rawValue)] done already, skipped")
        continue
      }
      launch.say("[\(stage.rawValue)] \(String(format: "%.0f", Date().timeIntervalSince(start))) s")
      let begin = Date()
      try run(stage)
      try launch.communicator.barrier()
      if launch.isRoot { recordTime(of: stage, seconds: Date().timeIntervalSince(begin)) }
    }
  }

  /// Whether a stage's outputs are all there (the sweep and the report always run: both resume
  /// or redo cheaply).
  func isDone(_ stage: ReproduceStage) throws -> Bool {
    let exists = FileManager.default.fileExists(atPath:)
    switch stage {
    case .data: return exists(raw + "/list_attr_celeba.txt")
    case .pack: return exists(packed + "/labels.bin")
    case .pretrain: return exists(pretrained)
    case .sweep: return try sweepIsFinished()
    case .report: return false
    case .convergedHeads: return try best().keys.allSatisfy { exists(convergedRun($0) + "/run.json") }
    case .seeds: return try seedRuns().allSatisfy { exists($0.directory + "/run.json") }
    case .balanced: return try best()[.bnRecal] == nil || balancedRuns.allSatisfy { exists($0 + "/run.json") }
    case .probe: return try best()[.frozen] == nil || exists(probe + "/run.json")
    case .backbones: return try backboneRuns().joined().allSatisfy { exists($0 + "/run.json") }
    case .epochTimes: return exists(epochTimes)
    case .bnStatistics: return exists(analysis + "/bn-statistics.md")
    }
  }

  private func run(_ stage: ReproduceStage) throws {
    switch stage {
    case .data: try writeData()
    case .pack: try pack()
    case .pretrain: try pretrain()
    case .sweep: try sweep()
    case .convergedHeads: try solveHeads()
    case .seeds: try trainSeeds()
    case .balanced: try trainBalanced()
    case .probe: try trainProbe()
    case .backbones: try trainBackbones()
    case .epochTimes: try timeEpochs()
    case .bnStatistics: try measureStatistics()
    case .report: try writeReport()
    }
  }

  /// OUT/stages.json: each stage's wall seconds (the latest run of it), for `fairtune plan` checks.
  private func recordTime(of stage: ReproduceStage, seconds: Double) {
    let path = out + "/stages.json"
    var times = ((try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))) as? [String: Double]) ?? [:]
    times[stage.rawValue] = seconds
    if let data = try? JSONSerialization.data(withJSONObject: times, options: [.prettyPrinted, .sortedKeys]) {
      try? AtomicFile.write([UInt8](data), to: path)
    }
  }

  // MARK: What the stages share

  private func dataset() throws -> PackedDataset {
    if let openedDataset { return openedDataset }
    let opened = try TrainingSession.open(packed, imageSize: settings.imageSize, run: out, communicator: launch.communicator)
    openedDataset = opened
    return opened
  }

  private func backbone() throws -> PretrainedBackbone {
    if let readBackbone { return readBackbone }
    let read = try PretrainedBackbone.read(pretrained)
    readBackbone = read
    return read
  }

  /// Each strategy's best sweep trial.
  private func best() throws -> [Strategy: TrialRecord] {
    if let readBest { return readBest }
    let journal = try Journal(path: out + "/sweep/journal.jsonl", readOnly: true)
    let found = Dictionary(uniqueKeysWithValues: strategies.compactMap { s in journal.best(strategy: s.rawValue).map { (s, $0) } })
    readBest = found
    return found
  }

  /// The fine-tuning stage again with other seeds: each strategy's best settings, seeds k = 1..<N.
  private func seedRuns() throws -> [(strategy: Strategy, k: Int, record: TrialRecord, directory: String)] {
    let best = try best()
    return strategies.flatMap { s in
      (1..<max(seeds, 1)).compactMap { k in best[s].map { (s, k, $0, out + "/seeds/\(s.rawValue)-seed\(k)") } }
    }
  }

  /// A fine-tuning run of `strategy` with `spec`, on the pretrained backbone where it starts from one.
  private func job(_ strategy: Strategy, _ spec: TrainingSpec) throws -> FineTuneJob {
    FineTuneJob(
      strategy: strategy, spec: spec, model: settings.modelSpec, pretrained: strategy.startsFromPretrainedBackbone ? try backbone() : nil)
  }

  /// A fine-tuning run, skipped when its run.json exists.
  private func finetune(_ job: FineTuneJob) throws {
    guard !FileManager.default.fileExists(atPath: job.spec.out + "/run.json") else { return }
    var job = job
    job.spec.precision = precision.precision
    try job.run(try job.makeModel(), in: try launch.session(try dataset(), spec: job.spec, defining: job.defining, parallel: parallel))
    try launch.communicator.barrier()
  }

  // MARK: The stages

  private func writeData() throws {
    guard launch.isRoot else { return }
    let s = settings
    let plan = SynthesisPlan(train: s.train, validation: s.val, test: s.test, imageSize: s.synthSize, seed: seed)
    let output = try OutputDirectory(URL(fileURLWithPath: raw), option: "--out")
    let begin = Date()
    try Synthesizer.write(plan, labels: try Synthesizer.labels(plan, from: nil), into: output) { _ in }
    try output.commit()
    launch.say(String(format: "wrote %d synthetic faces (%d train, %d val, %d test) to %@ in %.1f s", plan.count, s.train, s.val, s.test, raw,
      Date().timeIntervalSince(begin)))
  }

  private func pack() throws {
    guard launch.isRoot else { return }
    let output = try OutputDirectory(URL(fileURLWithPath: packed), option: "--out")
    let report = try Packer.pack(celebA: URL(fileURLWithPath: raw), imageSize: settings.imageSize, into: output, skipBadImages: false)
    try output.commit()
    launch.say(String(format: "packed %d images at %dx%d into %@ in %.1f s", report.packed, settings.imageSize, settings.imageSize, packed,
      report.seconds))
  }

  private func pretrain() throws {
    try pretrain(into: out + "/pretrain", seed: seed)
  }

  /// A SimCLR backbone with the preset's recipe.
  private func pretrain(into directory: String, seed: UInt64) throws {
    let s = settings
    var spec = TrainingSpec(data: packed, out: directory)
    spec.batch = s.pretrainBatch
    spec.epochs = s.pretrainEpochs
    spec.seed = seed
    spec.warmupEpochs = Double(s.pretrainEpochs) / 10
    spec.learningRate = s.pretrainLearningRate
    spec.precision = precision.precision
    var job = PretrainJob(spec: spec, model: s.modelSpec)
    job.monitorImages = s.monitorImages
    job.minimumCropScale = s.minCropScale
    job.blur = s.blur
    job.temperature = s.temperature
    try job.run(in: try launch.session(try dataset(), spec: spec, defining: job.defining, parallel: parallel))
  }

  /// Every strategy and supervised get the same budget: the same number of trials from the same
  /// space, the same largest number of epochs, the same early stopping.
  private var asha: Asha? { settings.maxEpochs > 1 ? Asha(eta: 3, minEpochs: 1) : nil }

  private func sweep() throws {
    let s = settings
    let plan = SweepPlan(
      strategies: strategies.map(\.rawValue), trials: s.trials, groupSize: groupSize, maxEpochs: s.maxEpochs, maxFailures: s.trials, seed: seed,
      space: .standard, heartbeatTimeout: 600, asha: asha)
    var job = SweepJob(plan: plan, data: packed, out: out + "/sweep", model: s.modelSpec, pretrained: try backbone(), batch: s.batch)
    job.thresholdImages = s.thresholdImages
    job.precision = precision.precision
    job.parallel = parallel
    job.beforeFirstStep = { [launch] in launch!.injectFaults() }
    try job.checkWhatTrialsShare(dataset: try dataset(), ranks: launch.communicator.size)
    let empty = try job.run(dataset: try dataset(), world: launch.communicator)
    if !empty.isEmpty {
      throw SweepError.noResults(strategies: empty.map { "\($0.strategy)\($0.reason.map { " (last failure: \($0))" } ?? "")" }, run: out + "/sweep")
    }
    guard launch.isRoot else { return }
    let budget = "Every strategy and supervised drew \(s.trials) trials from the same search space (`fairtune sweep --help`; docs/search.md) at batch \(s.batch), each of at most \(s.maxEpochs) epoch\(s.maxEpochs == 1 ? "" : "s")"
      + (asha == nil ? "." : "; ASHA (eta 3, rungs from the first epoch) stopped the trials that fell behind those of their strategy at a rung, and a stopped trial keeps its metric.")
      + " The paper's equivalent compute budget: no strategy gets more trials or epochs than another. Every strategy's head trains by its draw, frozen's and bn-recal's on their feature table. The metric is the validation mean F1 with thresholds from train."
    let journal = try Journal(path: out + "/sweep/journal.jsonl", readOnly: true)
    try FileManager.default.createDirectory(atPath: analysis, withIntermediateDirectories: true)
    try AtomicFile.write(Array(journal.summary(strategies: strategies.map(\.rawValue), budget: budget).utf8), to: search)
  }

  private func trainSeeds() throws {
    for run in try seedRuns() where !FileManager.default.fileExists(atPath: run.directory + "/run.json") {
      launch.say("  \(run.strategy.rawValue), seed \(run.k) of \(seeds): the settings of \(run.record.id)")
      try finetune(try job(run.strategy,
        .trial(run.record.settings, data: packed, out: run.directory, batch: settings.batch, seed: run.record.settings.seed + UInt64(run.k) * 1000)))
    }
  }

  /// Every strategy has its trials finished or stopped, each best trial is scored and the search
  /// summary written: a re-run has nothing left to do there (and must not record its time as 0).
  private func sweepIsFinished() throws -> Bool {
    guard FileManager.default.fileExists(atPath: search), FileManager.default.fileExists(atPath: out + "/sweep/journal.jsonl") else { return false }
    let journal = try Journal(path: out + "/sweep/journal.jsonl", readOnly: true)
    return strategies.allSatisfy { strategy in
      let records = journal.records(strategy: strategy.rawValue)
      guard let best = journal.best(strategy: strategy.rawValue) else { return false }
      return records.filter { $0.status.isComplete }.count >= settings.trials
        && FileManager.default.fileExists(atPath: out + "/sweep/trials/\(best.id)/scores-test.csv")
    }
  }

  private func convergedRun(_ strategy: Strategy) -> String { out + "/converged/" + strategy.rawValue }

  /// Beyond the paper, for every strategy's selected model: the backbone frozen as the strategy
  /// left it (weights and running statistics), every image's features computed once, and the head
  /// solved to convergence (L-BFGS, at the trial's weight decay): what the statistics and the
  /// backbone give apart from what the head's optimizer did.
  private func solveHeads() throws {
    let best = try best()
    for strategy in strategies {
      guard let record = best[strategy] else { continue }
      let trial = out + "/sweep/trials/" + record.id
      var spec = TrainingSpec.trial(record.settings, data: packed, out: convergedRun(strategy), batch: settings.batch)
      spec.epochs = 1
      var job = FineTuneJob(strategy: .frozen, spec: spec, model: settings.modelSpec, pretrained: try PretrainedBackbone.read(trial + "/final.ckpt"))
      job.head = .converged
      job.recordedStrategy = strategy
      try finetune(job)
    }
  }

  /// bn-recal balanced on an attribute, at the best bn-recal settings and seeds: paired with it.
  private func trainBalanced() throws {
    guard let recal = try best()[.bnRecal] else { return }
    for (k, directory) in balancedRuns.enumerated() {
      launch.say("  bn-recal balanced on \(bnBalance), seed \(k) of \(seeds): the settings of \(recal.id)")
      var balanced = try job(.bnRecal, .trial(recal.settings, data: packed, out: directory, batch: settings.batch, seed: recal.settings.seed + UInt64(k) * 1000))
      balanced.bnBalance = bnBalance
      // The sweep's bn-recal trials ordered their pass by the sweep's seed.
      if k == 0 { balanced.recalibrationSeed = seed }
      try finetune(balanced)
    }
  }

  /// The control of pretraining: the same linear probe on a randomly initialised backbone.
  private func trainProbe() throws {
    guard let frozen = try best()[.frozen] else { return }
    var probeJob = try job(.frozen, .trial(frozen.settings, data: packed, out: probe, batch: settings.batch))
    probeJob.pretrained = nil
    probeJob.randomBackbone = true
    try finetune(probeJob)
  }

  /// Backbone k's folder (k from 2: the first is pretrain/, the sweep's).
  private func backboneFolder(_ k: Int) -> String { out + "/backbones/b\(k)" }

  /// The runs of backbones 2...N: each strategy with a selected trial, at its settings.
  private func backboneRuns() throws -> [[String]] {
    let best = try best()
    return (2..<max(settings.backbones + 1, 2)).map { k in strategies.filter { best[$0] != nil }.map { backboneFolder(k) + "/" + $0.rawValue } }
  }

  /// Backbones 2...N pretrained as the first (seeds seed + k - 1), and every strategy's selected
  /// settings fine-tuned on each, with the trial's own fine-tuning seed.
  private func trainBackbones() throws {
    let best = try best()
    for k in 2..<max(settings.backbones + 1, 2) {
      let folder = backboneFolder(k)
      let checkpoint = folder + "/pretrain/final.ckpt"
      if !FileManager.default.fileExists(atPath: checkpoint) {
        launch.say("  backbone \(k) of \(settings.backbones): SimCLR pretraining, seed \(seed + UInt64(k - 1))")
        try pretrain(into: folder + "/pretrain", seed: seed + UInt64(k - 1))
      }
      let backbone = try PretrainedBackbone.read(checkpoint)
      for strategy in strategies {
        guard let record = best[strategy] else { continue }
        launch.say("  backbone \(k): \(strategy.rawValue) at the settings of \(record.id)")
        try finetune(FineTuneJob(
          strategy: strategy, spec: .trial(record.settings, data: packed, out: folder + "/" + strategy.rawValue, batch: settings.batch),
          model: settings.modelSpec, pretrained: strategy.startsFromPretrainedBackbone ? backbone : nil))
      }
    }
  }

  /// Each strategy's time per epoch, side by side: the same data, batch and settings (SGD at a
  /// constant rate), a few steps each; the sweep's times are its draws' epochs.
  private func timeEpochs() throws {
    let s = settings
    var seconds: [Strategy: Double] = [:]
    for strategy in strategies {
      let directory = out + "/epoch-times/\(strategy.rawValue)"
      var spec = TrainingSpec(data: packed, out: directory)
      spec.batch = s.batch
      spec.steps = min(s.stepsPerEpoch, PresetSettings.timedSteps)
      spec.optimizer = .sgd
      spec.learningRate = 1
      spec.schedule = .constant
      spec.seed = seed
      try finetune(try job(strategy, spec))
      if launch.isRoot {
        seconds[strategy] = try EpochTimes.perEpoch(run: URL(fileURLWithPath: directory), strategy: strategy, stepsPerEpoch: s.stepsPerEpoch)
      }
    }
    guard launch.isRoot else { return }
    try FileManager.default.createDirectory(atPath: analysis, withIntermediateDirectories: true)
    try AtomicFile.write([UInt8](EpochTimes(seconds: seconds).json), to: epochTimes)
  }

  /// The paper's mechanism: BatchNorm statistics of the pretrained backbone against the data's.
  private func measureStatistics() throws {
    guard launch.isRoot else { return }
    let model = settings.modelSpec
    let pretrainedModel = try FineTuning.model(model, pretrained: try backbone(), seed: seed)
    let dataset = try dataset()
    let images = Array(dataset.train.prefix(2048))
    Launch.setThreads(threadsPerRank)
    let data = BatchNormDrift.measure(pretrainedModel, dataset: dataset, images: images, batch: 128, threads: threadsPerRank)
    var models: [(label: String, statistics: [LayerStatistics])] = []
    for strategy in strategies {
      guard let record = try best()[strategy] else { continue }
      let tuned = try FineTuning.model(model, pretrained: PretrainedBackbone.read(out + "/sweep/trials/\(record.id)/final.ckpt"), seed: seed)
      models.append((strategy.rawValue, BatchNormDrift.running(tuned)))
    }
    let (markdown, csv) = BatchNormDrift.markdown(data: data, pretrained: BatchNormDrift.running(pretrainedModel), models: models, images: images.count)
    try FileManager.default.createDirectory(atPath: analysis, withIntermediateDirectories: true)
    try AtomicFile.write(Array(csv.utf8), to: analysis + "/bn-statistics.csv")
    try AtomicFile.write(Array(markdown.utf8), to: analysis + "/bn-statistics.md")
  }

  private func writeReport() throws {
    guard launch.isRoot else { return }
    let best = try best()
    let balanced = best[.bnRecal] == nil ? [] : balancedRuns
    var report = ReportJob(runs: strategies.compactMap { best[$0].map { out + "/sweep/trials/" + $0.id } } + balanced.prefix(1), out: out + "/report")
    report.attributes = raw + "/list_attr_celeba.txt"
    report.partition = raw + "/list_eval_partition.txt"
    report.bootstrap = BootstrapOptions(resamples: settings.bootstrap, seed: 0)
    report.findings = true
    report.pretrain = out + "/pretrain"
    report.include = [search, analysis + "/bn-statistics.md"]
    report.epochTimes = epochTimes
    report.seedRuns = try seedRuns().map(\.directory) + balanced.dropFirst()
    report.convergedRuns = strategies.compactMap { best[$0] == nil ? nil : convergedRun($0) }
    report.backboneRuns = try backboneRuns()
    report.probe = best[.frozen] == nil ? nil : probe
    report.preface = "Preset \(preset.rawValue). SimCLR pretraining: \(settings.recipe)."
    for line in try report.run() { launch.say(line) }
  }
}

// A sweep over fine-tuning strategies as a job: the coordinator (`Sweep`) hands out trials, and
// each group fine-tunes its trial (`FineTuneJob`'s parts) with the drawn hyper-parameters,
// reporting the validation metric after each epoch. `fairtune sweep` and reproduce's sweep
// stage run it.
import Data
import Distributed
import Experiment
import Fairness
import Foundation
import NN
import Support
import Tensors

public struct SweepJob {
  /// What each strategy's best trial is scored on at the end.
  public enum Scoring: String, CaseIterable, Sendable {
    /// Trials record their validation metric; only each strategy's best is scored on every split.
    case best
    /// Every finished trial is scored on every split, as `fairtune finetune` does.
    case all
  }

  public var plan: SweepPlan
  public var strategies: [Strategy]
  /// A packed dataset directory.
  public var data: String
  /// The sweep's run directory.
  public var out: String
  public var model: ModelSpec
  /// nil when the only strategy is supervised.
  public var pretrained: PretrainedBackbone?
  /// Global batch of every trial.
  public var batch: Int
  /// Train images that set the thresholds of the per-epoch validation metric.
  public var thresholdImages = 4000
  public var augment = false
  /// bn-recal trials: the attribute whose two groups weigh equally in the statistics.
  public var bnBalance: String?
  /// What every trial's GEMMs multiply.
  public var precision = Precision.fp32
  public var scoring = Scoring.best
  public var parallel = DataParallelSettings()
  /// Runs before each trial's first step (the command line's injected faults).
  public var beforeFirstStep: () -> Void = {}

  public init(plan: SweepPlan, data: String, out: String, model: ModelSpec, pretrained: PretrainedBackbone?, batch: Int) {
    self.plan = plan
    self.strategies = plan.strategies.compactMap(Strategy.init(rawValue:))
    self.data = data
    self.out = out
    self.model = model
    self.pretrained = pretrained
    self.batch = batch
  }

  /// What every trial shares, checked before the first one starts, so that settings that cannot
  /// work are one error instead of a sweep of identical failures: the model built from the
  /// pretrained checkpoint, the batch against the data and the groups.
  public func checkWhatTrialsShare(dataset: PackedDataset, ranks: Int) throws {
    if let pretrained { _ = try FineTuning.model(model, pretrained: pretrained, seed: plan.seed) }
    if strategies.contains(where: { !$0.startsFromPretrainedBackbone }) { _ = try FineTuning.model(model, pretrained: nil, seed: plan.seed) }
    if strategies.contains(where: { $0.setupPass == .recalibration }), let bnBalance {
      _ = try BatchNormRecalibration.balance(bnBalance, dataset: dataset)
    }
    guard batch <= dataset.train.count else {
      throw RunSettingsError(description: "--batch \(batch) is larger than the \(dataset.train.count) train images of \(data).")
    }
    if ranks > 1 {
      guard (ranks - 1) % plan.groupSize == 0 else {
        throw RunSettingsError(description: "\(SweepError.badGroups(workers: ranks - 1, groupSize: plan.groupSize)).")
      }
      guard batch >= plan.groupSize else {
        throw RunSettingsError(description: "--batch \(batch) is smaller than --group-size \(plan.groupSize): every rank of a group needs at least one image.")
      }
    }
  }

  /// Runs the sweep on `world` (resuming it), then scores each strategy's best trial; returns,
  /// on rank 0, the strategies that ended without a finished trial (with their last failure).
  public func run(dataset: PackedDataset, world: Communicator) throws -> [(strategy: String, reason: String?)] {
    try FileManager.default.createDirectory(atPath: out + "/trials", withIntermediateDirectories: true)
    let tables = FeatureTables()
    let sweep = Sweep(world: world, plan: plan, directory: out) { id, settings, group, progress in
      try self.runTrial(id, settings, group: group, dataset: dataset, tables: tables, progress: progress)
    }
    try sweep.run()
    if scoring == .best { try scoreBestTrials(sweep, dataset: dataset, world: world) }
    guard world.rank == 0 else { return [] }
    sweep.logger.info("\(String(format: "coordinator time: %.3f s in all (journal, trials.csv, best checkpoints)", sweep.coordinatorSeconds))")
    return try sweep.strategiesWithoutResults()
  }

  /// Each strategy's best trial scored on every split into its directory (what `fairtune report`
  /// reads), by all ranks together; a trial already scored is left as it is.
  func scoreBestTrials(_ sweep: Sweep, dataset: PackedDataset, world: Communicator) throws {
    try world.barrier()
    for (strategy, id) in try sweep.bestTrials().sorted(by: { $0.key < $1.key }) {
      let directory = out + "/trials/" + id
      if FileManager.default.fileExists(atPath: directory + "/scores-test.csv") { continue }
      let model = try Interchange.model(from: try Checkpoint.read(directory + "/final.ckpt"), source: directory + "/final.ckpt")
      sweep.logger.info("scoring the best \(strategy) trial, \(id), on every split")
      _ = try FineTuning.scoreSplits(model, dataset: dataset, into: directory, communicator: world, threads: BLAS.threadsPerRank)
      try world.barrier()
    }
  }

  /// One trial in RUN/trials/ID: fine-tune with the drawn hyper-parameters on the group,
  /// reporting the validation metric after each epoch; a finished trial records its last
  /// validation metric (scoring best) or is scored on every split like `fairtune finetune`
  /// (scoring all).
  func runTrial(
    _ id: String, _ settings: TrialSettings, group: Communicator, dataset: PackedDataset, tables: FeatureTables,
    progress: @escaping (Int?, Double?) -> Bool
  ) throws -> TrialOutcome {
    let strategy = Strategy(rawValue: settings.strategy)!
    var spec = TrainingSpec.trial(settings, data: data, out: out + "/trials/" + id, batch: batch)
    spec.precision = precision
    var defining = spec.defining
    defining["strategy"] = strategy.rawValue
    defining["trial"] = id
    let session = try TrainingSession(
      communicator: group, dataset: dataset, spec: spec, defining: defining, parallel: parallel, beforeFirstStep: beforeFirstStep)
    var job = FineTuneJob(strategy: strategy, spec: spec, model: model, pretrained: strategy.startsFromPretrainedBackbone ? pretrained : nil)
    job.augment = augment
    job.bnBalance = bnBalance
    // Every bn-recal trial recalibrates the same backbone on the same images, in an order seeded
    // by the sweep's seed: the first trial's pass serves the others.
    job.recalibrationSeed = plan.seed
    let start = Clock.now()
    let hooks = TrialHooks(
      id: id, tables: tables, thresholdImages: thresholdImages, progress: progress, recordsValidationOnly: scoring == .best)
    let result = try job.run(try job.makeModel(), in: session, trial: hooks)
    return TrialOutcome(
      finished: true, metric: result.f1, seconds: Clock.now() - start, reason: nil, checkpoint: session.run.finalCheckpoint,
      stoppedAt: result.stoppedAt)
  }
}

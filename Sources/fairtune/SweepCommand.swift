// `fairtune sweep`: the coordinator's random search over fine-tuning strategies, trials run by
// groups of ranks.
import ArgumentParser
import Data
import Distributed
import Experiment
import Foundation
import NN
import Support
import Tensors
import Training

struct SweepCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sweep",
    abstract: "Random search over optimizers, learning rates, schedules, weight decay and epochs, per strategy.",
    discussion: paragraphs("""
      Rank 0 coordinates; the other ranks form groups of --group-size that each train one trial
      at a time, data-parallel with synchronized BatchNorm inside the group (one rank alone does
      everything in turn). Every trial's start and end goes to RUN/journal.jsonl (fsynced before
      it is acted on); RUN/trials.csv has one row per trial (trial, strategy, status, every
      hyper-parameter, validation mean F1 with thresholds from train, seconds, group); each trial
      trains in RUN/trials/ID; the best trial of each strategy is copied to RUN/best/STRATEGY.ckpt
      and (--score best, the default) scored on every split at the end.
      Re-running the same command resumes: finished trials are kept, interrupted ones run again
      (from their last checkpoint), failed ones (a diverging loss, an error) are replaced by new
      draws up to --max-failures, and each strategy ends with exactly --trials finished trials.

      The search space (default, or --space FILE in JSON):
        {"optimizers": {"sgd": [0.3, 10.0], "lars": [0.3, 5.0],
                        "adam": [1e-4, 3e-3], "adamw": [1e-4, 3e-3]},
         "schedules": ["cosine", "onecycle"], "weight_decay": [1e-6, 1e-3],
         "zero_weight_decay": 0.25, "min_epochs": 1, "warmup_fraction": 0.2}

      Learning rates and weight decay are log-uniform; epochs are uniform up to --max-epochs. The
      ranges are set so that every draw trains a fresh head within an epoch (docs/search.md): the
      head is not trust-ratio adapted by LARS, and Adam and AdamW give it 30 times their rate.
      frozen trials solve their head to convergence on the feature table (L-BFGS), so only their
      weight decay matters.

      --scheduler asha stops trials early: after epochs m, m*eta, m*eta^2, ... (--asha-min-epochs
      m, --asha-eta eta; below the trial's last epoch) a trial's validation metric is compared
      with those of every trial of its strategy that reached the same epoch, and it goes on only
      if it is in their top 1/eta. A stopped trial keeps its checkpoint and metric, is recorded
      `stopped` (with the cutoff it missed) and counts towards --trials.
      """))

  @OptionGroup var modelOptions: ModelOptions
  @OptionGroup var distributed: DistributedOptions

  @Option(help: "A packed dataset directory.")
  var data: String

  @Option(help: "The pretrained checkpoint (not needed when the only strategy is supervised).")
  var from: String?

  @Option(help: "Comma-separated strategies: frozen, bn-stats, bn-stats-affine, bn-stats-skip, full, supervised.")
  var strategies: String

  @Option(help: "Finished trials wanted per strategy.")
  var trials: Int = 20

  @Option(help: "Ranks per trial group.")
  var groupSize: Int = 1

  @Option(help: "Largest number of epochs a trial may draw.")
  var maxEpochs: Int = 3

  @Option(help: "Failed trials allowed per strategy before it gives up (default: --trials).")
  var maxFailures: Int?

  @Option(help: "Seed of the trial draws.")
  var seed: UInt64 = 0

  @Option(help: "The search space, in JSON (see above).")
  var space: String?

  @Option(help: "Global batch of every trial.")
  var batch: Int = 64

  @Option(help: "Seconds a busy group may stay silent before it is declared lost.")
  var heartbeatTimeout: Double = 600

  @Option(help: "fifo (every trial runs all its epochs) or asha (asynchronous successive halving: stop trials that fall behind at rungs).")
  var scheduler: Scheduler = .fifo

  @Option(help: "ASHA's reduction factor: a third (for 3) of the trials at a rung go on.")
  var ashaEta: Int = 3

  @Option(help: "ASHA's first rung, in epochs (then times --asha-eta).")
  var ashaMinEpochs: Int = 1

  @Option(help: "Train images used to set the thresholds of the per-epoch validation metric.")
  var thresholdImages: Int = 4000

  @Flag(help: "Random resized crops and flips while fine-tuning.")
  var augment = false

  @Option(help: "best: trials record their validation metric (thresholds from --threshold-images train images) and only each strategy's best trial is scored on every split at the end; all: every finished trial is scored on every split, as `fairtune finetune` does.")
  var score: Scoring = .best

  enum Scoring: String, ExpressibleByArgument, CaseIterable { case best, all }

  @Option(help: "The sweep's run directory.")
  var out: String

  enum Scheduler: String, ExpressibleByArgument, CaseIterable { case fifo, asha }

  var strategyList: [Strategy] { strategies.split(separator: ",").compactMap { Strategy(rawValue: String($0)) } }

  func validate() throws {
    let names = strategies.split(separator: ",").map(String.init)
    guard !names.isEmpty else { throw ValidationError("--strategies needs at least one strategy.") }
    for name in names where Strategy(rawValue: name) == nil {
      throw ValidationError("--strategies: '\(name)' is not a strategy: use \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")).")
    }
    guard Set(names).count == names.count else { throw ValidationError("--strategies lists a strategy twice.") }
    if strategyList.contains(where: { $0 != .supervised }) && from == nil {
      throw ValidationError("--from CKPT is needed: every strategy but supervised fine-tunes a pretrained backbone.")
    }
    if let from, !FileManager.default.fileExists(atPath: from) { throw ValidationError("--from \(from): no such file.") }
    guard trials > 0 else { throw ValidationError("--trials must be positive (got \(trials)).") }
    guard groupSize > 0 else { throw ValidationError("--group-size must be positive (got \(groupSize)).") }
    guard maxEpochs > 0 else { throw ValidationError("--max-epochs must be positive (got \(maxEpochs)).") }
    if let m = maxFailures, m < 0 { throw ValidationError("--max-failures cannot be negative (got \(m)).") }
    guard batch > 0 else { throw ValidationError("--batch must be positive (got \(batch)).") }
    guard ashaEta >= 2 else { throw ValidationError("--asha-eta must be at least 2 (got \(ashaEta)).") }
    guard ashaMinEpochs >= 1 else { throw ValidationError("--asha-min-epochs must be at least 1 (got \(ashaMinEpochs)).") }
    if scheduler == .asha && ashaMinEpochs >= maxEpochs {
      throw ValidationError("--scheduler asha has nothing to stop: its first rung (--asha-min-epochs \(ashaMinEpochs)) is not below --max-epochs \(maxEpochs); raise --max-epochs or lower --asha-min-epochs.")
    }
    guard heartbeatTimeout > 0 else { throw ValidationError("--heartbeat-timeout must be positive (got \(heartbeatTimeout)).") }
    if let space, !FileManager.default.fileExists(atPath: space) { throw ValidationError("--space \(space): no such file.") }
  }

  func run() throws {
    let launch: Launch
    let dataset: PackedDataset
    let searchSpace: SearchSpace
    let pretrained = strategyList.contains { $0 != .supervised } ? try FinetuneCommand.pretrained(from) : nil
    let modelOptions = try FinetuneCommand.options(self.modelOptions, pretrained: pretrained, data: data)
    do {
      launch = try Launch.start(distributed)
      dataset = try Session.open(data, model: modelOptions, run: out, launch: launch)
      searchSpace = try space.map { try SearchSpace(json: Data(contentsOf: URL(fileURLWithPath: $0)), source: $0) } ?? .standard
      try checkWhatTrialsShare(modelOptions, pretrained: pretrained, dataset: dataset, ranks: launch.communicator.size)
      try FileManager.default.createDirectory(atPath: out + "/trials", withIntermediateDirectories: true)
    } catch let error as ValidationError {
      throw error
    } catch {
      throw ValidationError("\(error)")
    }
    let plan = SweepPlan(
      strategies: strategyList.map(\.rawValue), trials: trials, groupSize: groupSize, maxEpochs: maxEpochs,
      maxFailures: maxFailures ?? trials, seed: seed, space: searchSpace, heartbeatTimeout: heartbeatTimeout,
      asha: scheduler == .asha ? Asha(eta: ashaEta, minEpochs: ashaMinEpochs) : nil)
    let tables = FeatureTables()
    let sweep = Sweep(world: launch.communicator, plan: plan, directory: out) { id, settings, group, progress in
      try self.runTrial(id, settings, group: group, dataset: dataset, modelOptions: modelOptions, pretrained: pretrained, tables: tables, progress: progress)
    }
    let empty: [(strategy: String, reason: String?)]
    do {
      try sweep.run()
      if score == .best { try scoreBestTrials(sweep, dataset: dataset, launch: launch) }
      empty = launch.isRoot ? try sweep.strategiesWithoutResults() : []
      if launch.isRoot {
        print(String(format: "coordinator time: %.3f s in all (journal, trials.csv, best checkpoints)", sweep.coordinatorSeconds))
      }
    } catch {
      launch.fail(error)
    }
    if !empty.isEmpty {
      let lines = empty.map { "\($0.strategy)\($0.reason.map { " (last failure: \($0))" } ?? "")" }
      launch.fail(SweepError.noResults(strategies: lines, run: out))
    }
  }

  /// Each strategy's best trial scored on every split into its directory (what `fairtune report`
  /// reads), by all ranks together; a trial already scored is left as it is.
  func scoreBestTrials(_ sweep: Sweep, dataset: PackedDataset, launch: Launch) throws {
    try launch.communicator.barrier()
    for (strategy, id) in try sweep.bestTrials().sorted(by: { $0.key < $1.key }) {
      let directory = out + "/trials/" + id
      if FileManager.default.fileExists(atPath: directory + "/scores-test.csv") { continue }
      let model = try Interchange.model(from: try Checkpoint.read(directory + "/final.ckpt"), source: directory + "/final.ckpt")
      if launch.isRoot { print("scoring the best \(strategy) trial, \(id), on every split") }
      _ = try EvaluateCommand.evaluate(model, dataset: dataset, into: directory, launch: launch, threads: BLAS.threadsPerRank)
      try launch.communicator.barrier()
    }
  }

  /// What every trial shares, checked before the first one starts, so that options that cannot
  /// work are one usage error instead of a sweep of identical failures: the model built from
  /// --from, the batch against the data and the groups.
  func checkWhatTrialsShare(_ options: ModelOptions, pretrained: (checkpoint: Checkpoint, source: String)?, dataset: PackedDataset, ranks: Int) throws {
    if let pretrained { _ = try FinetuneCommand.model(options, pretrained: pretrained, seed: seed) }
    if strategyList.contains(.supervised) { _ = try FinetuneCommand.model(options, pretrained: nil, seed: seed) }
    guard batch <= dataset.train.count else {
      throw ValidationError("--batch \(batch) is larger than the \(dataset.train.count) train images of \(data).")
    }
    if ranks > 1 {
      guard (ranks - 1) % groupSize == 0 else { throw ValidationError("\(SweepError.badGroups(workers: ranks - 1, groupSize: groupSize)).") }
      guard batch >= groupSize else {
        throw ValidationError("--batch \(batch) is smaller than --group-size \(groupSize): every rank of a group needs at least one image.")
      }
    }
  }

  /// The training options of a trial (also used to re-run a trial's settings with other seeds).
  static func trainingArguments(_ settings: TrialSettings, data: String, out: String, batch: Int, seed: UInt64? = nil) -> [String] {
    [
      "--data", data, "--out", out, "--batch", "\(batch)", "--epochs", "\(settings.epochs)",
      "--seed", "\(seed ?? settings.seed)", "--optimizer", settings.optimizer, "--lr", "\(settings.learningRate)",
      "--weight-decay", "\(settings.weightDecay)", "--schedule", settings.schedule,
      "--warmup-epochs", "\(settings.warmupEpochs)",
    ]
  }

  /// One trial in RUN/trials/ID: fine-tune with the drawn hyper-parameters on the group,
  /// reporting the validation metric after each epoch; a finished trial records its last
  /// validation metric (--score best) or is evaluated on every split like `fairtune finetune`
  /// (--score all).
  func runTrial(
    _ id: String, _ settings: TrialSettings, group: Communicator, dataset: PackedDataset, modelOptions: ModelOptions,
    pretrained: (checkpoint: Checkpoint, source: String)?, tables: FeatureTables, progress: @escaping (Int?, Double?) -> Bool
  ) throws -> TrialOutcome {
    let strategy = Strategy(rawValue: settings.strategy)!
    let directory = out + "/trials/" + id
    let training = try TrainingOptions.parse(Self.trainingArguments(settings, data: data, out: directory, batch: batch))
    var defining = training.defining
    defining["strategy"] = strategy.rawValue
    defining["trial"] = id
    let launch = Launch(communicator: group)
    let session = try Session(launch: launch, dataset: dataset, training: training, defining: defining)
    let model = try FinetuneCommand.model(modelOptions, pretrained: strategy == .supervised ? nil : pretrained, seed: settings.seed)
    strategy.apply(to: model)
    let counts = strategy.updatedCounts(model)
    let start = Clock.now()
    var stoppedAt: Int?
    var lastMetric: Double?
    let reused = tables.frozen
    let cache = try FinetuneCommand.featureCache(model, strategy: strategy, augmented: augment, session: session, reuse: reused)
    if cache != nil { tables.frozen = cache }
    let trainer = try session.train(
      model, objective: .attributes, transform: augment ? .finetuneDefault : .none, training: training, distributed: distributed,
      learningRate: settings.learningRate,
      metadata: ["kind": "finetune", "strategy": strategy.rawValue, "trial": id, "updated_parameters": counts.parameters, "updated_buffers": counts.buffers]
    ) { trainer in
      trainer.logger = Log.silent
      trainer.featureCache = cache
      if cache != nil { trainer.convergedHead = ConvergedHead(dataset: dataset, weightDecay: settings.weightDecay) }
      trainer.afterStep = { _ = progress(nil, nil) }
      trainer.afterEpoch = { [unowned trainer] epoch in
        let f1 = try Evaluation.validationF1(model, dataset: dataset, trainLimit: self.thresholdImages, communicator: group, threads: session.threads, cache: cache)
        lastMetric = f1
        if !progress(epoch + 1, f1) {
          trainer.stopRequested = true
          stoppedAt = epoch + 1
        }
      }
    }
    let tableSeconds = cache != nil && cache !== reused ? cache!.fillSeconds : 0
    let result = try FinetuneCommand.finish(
      model, trainer: trainer, strategy: strategy, counts: counts, session: session, cache: cache, tableSeconds: tableSeconds,
      validation: score == .best ? lastMetric : nil)
    return TrialOutcome(
      finished: true, metric: result.f1, seconds: Clock.now() - start, reason: nil, checkpoint: session.run.finalCheckpoint, stoppedAt: stoppedAt)
  }
}

/// What the trials of one process share: the frozen backbone's feature table (every frozen
/// trial fine-tunes the same --from backbone on the same images, so it is made once).
final class FeatureTables {
  var frozen: FeatureCache?
}

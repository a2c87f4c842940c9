// `fairtune sweep`: the coordinator's random search over fine-tuning strategies, trials run by
// groups of ranks. The options are checked here and parsed into a SweepJob (Training).
import ArgumentParser
import Data
import Distributed
import Experiment
import Foundation
import Support
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
      Every strategy's head trains by its trial's draw (the paper's protocol); frozen and bn-recal
      train theirs on the feature table, made once per process. bn-recal's pass over the train
      images runs once, in the first bn-recal trial of a process, and the others reuse its
      statistics; each trial's time counts the table and the pass whichever trial made them.

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

  @Option(help: "Comma-separated strategies: frozen, bn-recal, bn-stats, bn-stats-affine, bn-stats-skip, full, supervised.")
  var strategies: String

  @Option(help: "fp32, bf16 (fp32 where the CPU or this build has no bfloat16 kernels, said at the start) or bf16-emulated (bfloat16's numerics, slower than fp32).")
  var precision: PrecisionRequest = .fp32

  @Option(help: "bn-recal trials: BatchNorm statistics that weigh the train images with and without this attribute (one of the 40, e.g. Male) equally.")
  var bnBalance: String?

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
    if strategyList.contains(where: \.startsFromPretrainedBackbone) && from == nil {
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
    try checkBalance(bnBalance, strategies: strategyList)
  }

  /// The job these options describe, with the model options adopted from --from.
  func job(_ modelOptions: ModelOptions, pretrained: PretrainedBackbone?, space: SearchSpace) -> SweepJob {
    let plan = SweepPlan(
      strategies: strategyList.map(\.rawValue), trials: trials, groupSize: groupSize, maxEpochs: maxEpochs,
      maxFailures: maxFailures ?? trials, seed: seed, space: space, heartbeatTimeout: heartbeatTimeout,
      asha: scheduler == .asha ? Asha(eta: ashaEta, minEpochs: ashaMinEpochs) : nil)
    var job = SweepJob(plan: plan, data: data, out: out, model: modelOptions.spec, pretrained: pretrained, batch: batch)
    job.thresholdImages = thresholdImages
    job.augment = augment
    job.bnBalance = bnBalance
    job.precision = precision.precision
    job.scoring = score == .best ? .best : .all
    job.parallel = distributed.parallel
    return job
  }

  func run() throws {
    let launch: Launch
    let dataset: PackedDataset
    var job: SweepJob
    let pretrained = strategyList.contains(where: \.startsFromPretrainedBackbone) ? try FinetuneCommand.pretrained(from) : nil
    let modelOptions = try FinetuneCommand.options(self.modelOptions, pretrained: pretrained, data: data)
    do {
      launch = try distributed.launch()
      dataset = try TrainingSession.open(data, imageSize: modelOptions.imageSize, run: out, communicator: launch.communicator)
      let searchSpace = try space.map { try SearchSpace(json: Data(contentsOf: URL(fileURLWithPath: $0)), source: $0) } ?? .standard
      job = self.job(modelOptions, pretrained: pretrained, space: searchSpace)
      try job.checkWhatTrialsShare(dataset: dataset, ranks: launch.communicator.size)
      if let notice = precision.resolved.notice { launch.say(notice) }
    } catch let error as ValidationError {
      throw error
    } catch {
      throw ValidationError("\(error)")
    }
    job.beforeFirstStep = { launch.injectFaults() }
    let empty: [(strategy: String, reason: String?)]
    do {
      empty = try job.run(dataset: dataset, world: launch.communicator)
    } catch {
      launch.fail(error)
    }
    if !empty.isEmpty {
      let lines = empty.map { "\($0.strategy)\($0.reason.map { " (last failure: \($0))" } ?? "")" }
      launch.fail(SweepError.noResults(strategies: lines, run: out))
    }
  }
}

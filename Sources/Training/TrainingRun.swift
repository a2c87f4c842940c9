// A whole training run wired in one place: the replica check, synchronized BatchNorm, the
// gradient reducer, the optimizer and schedule, the resume point, the loader and the trainer.
// pretrain, finetune and every sweep trial run through it.
import Data
import Distributed
import Foundation
import Logging
import NN
import Support
import Tensors

/// What a run trains with, besides the model and the data.
public struct RunSettings: Sendable {
  /// The global batch, split over the ranks.
  public var batch: Int
  public var epochs: Int
  /// Stop after this many steps (counted from the start of the run).
  public var steps: Int?
  /// Seed of the data order and augmentation.
  public var seed: UInt64
  public var optimizer: OptimizerSettings
  /// The schedule's kind and warmup; its length and base rate follow from the run.
  public var schedule: ScheduleKind
  public var warmupEpochs: Double
  /// Steps between checkpoints (nil: one per epoch), and how many are kept.
  public var checkpointEvery: Int?
  public var keep: Int
  /// Threads that load and augment batches.
  public var loaderThreads: Int
  /// BatchNorm statistics over all ranks (when there are several).
  public var synchronizedBatchNorm: Bool
  /// The gradient all-reduce's bucket size.
  public var bucketBytes: Int
  /// The order of the step's collectives on the link, and the gradients' format on it.
  public var collectives: CollectiveSchedule
  public var wire: GradientWire
  /// Tests: a rank whose replica is altered after the broadcast (the check must catch it).
  public var perturbRank: Int?
  /// Tests: the first step's summed gradients, written here.
  public var gradientDump: String?

  public init(
    batch: Int, epochs: Int, steps: Int? = nil, seed: UInt64, optimizer: OptimizerSettings, schedule: ScheduleKind,
    warmupEpochs: Double = 0, checkpointEvery: Int? = nil, keep: Int = 3, loaderThreads: Int, synchronizedBatchNorm: Bool = true,
    bucketBytes: Int = 25 << 20, perturbRank: Int? = nil, gradientDump: String? = nil, collectives: CollectiveSchedule = .priority,
    wire: GradientWire = .fp32
  ) {
    self.collectives = collectives
    self.wire = wire
    self.batch = batch
    self.epochs = epochs
    self.steps = steps
    self.seed = seed
    self.optimizer = optimizer
    self.schedule = schedule
    self.warmupEpochs = warmupEpochs
    self.checkpointEvery = checkpointEvery
    self.keep = keep
    self.loaderThreads = loaderThreads
    self.synchronizedBatchNorm = synchronizedBatchNorm
    self.bucketBytes = bucketBytes
    self.perturbRank = perturbRank
    self.gradientDump = gradientDump
  }

  /// The schedule of a run of `totalSteps` steps of which an epoch is `stepsPerEpoch`.
  public func schedule(stepsPerEpoch: Int, totalSteps: Int) -> Schedule {
    Schedule(
      kind: schedule, baseLearningRate: optimizer.learningRate, totalSteps: totalSteps,
      warmupSteps: Int(warmupEpochs * Double(stepsPerEpoch)),
      milestones: schedule == .step ? [totalSteps / 2, totalSteps * 3 / 4] : [], gamma: 0.1)
  }
}

/// A problem with a run's settings against its data or job, with what to do about it.
public struct RunSettingsError: Error, CustomStringConvertible {
  public let description: String
}

public enum TrainingRun {
  /// Trains `model` with `objective` on `dataset`'s train split into `run`, resuming it if it
  /// has checkpoints; returns the trainer (for its figures), or nil if the run had already
  /// finished. `configure` sees the trainer before the first step (a feature table, a solved
  /// head, sweep callbacks), `beforeFirstStep` runs just before training starts.
  public static func train(
    _ model: ResNet, objective: Objective, transform: Transform, dataset: PackedDataset, run: RunDirectory,
    communicator: Communicator, settings: RunSettings, metadata: [String: Any], logger: Logger = Log.logger("trainer"),
    configure: (Trainer) -> Void = { _ in }, beforeFirstStep: () -> Void = {}
  ) throws -> Trainer? {
    if run.isFinished {
      logger.info("\(run.path) is finished (final.ckpt exists): nothing to do")
      return nil
    }
    guard settings.batch >= communicator.size else {
      throw CommunicatorError.mismatch(
        "--batch \(settings.batch) is smaller than the \(communicator.size) ranks: every rank needs at least one image")
    }
    let split = dataset.train
    guard split.count >= settings.batch else {
      throw RunSettingsError(description: "--batch \(settings.batch) is larger than the \(split.count) train images of the dataset")
    }
    try Replicas.synchronize(model.registry, communicator: communicator, perturbRank: settings.perturbRank)
    let optimizer = settings.optimizer.make(model.registry.parameters { $0.requiresGradient })
    let step = try TrainingStep.dataParallel(
      model, objective: objective, optimizer: optimizer, communicator: communicator,
      settings: DataParallelSettings(
        synchronizedBatchNorm: settings.synchronizedBatchNorm, bucketBytes: settings.bucketBytes, collectives: settings.collectives,
        wire: settings.wire))
    let point = try Trainer.resumePoint(run, communicator: communicator) { logger.warning("\($0)") }
    let source = LoaderSource(
      dataset: dataset, split: split, globalBatch: settings.batch, communicator: communicator, epochs: settings.epochs,
      seed: settings.seed, transform: transform, threads: settings.loaderThreads, firstStep: point.step,
      // SimCLR drops an epoch's last partial batch (fewer negatives); fine-tuning keeps it.
      dropLast: objective != .attributes)
    let total = min(settings.epochs * source.stepsPerEpoch, settings.steps ?? .max)
    let plan = TrainingPlan(
      epochs: settings.epochs, maxSteps: settings.steps, globalBatch: settings.batch,
      checkpointEvery: settings.checkpointEvery ?? source.stepsPerEpoch, keep: settings.keep)
    let trainer = Trainer(
      step: step, schedule: settings.schedule(stepsPerEpoch: source.stepsPerEpoch, totalSteps: total), source: source, run: run, plan: plan,
      metadata: metadata)
    trainer.logger = logger
    if let checkpoint = point.checkpoint, let path = point.path {
      try trainer.restore(checkpoint, source: path)
      logger.info("resuming \(run.path) from step \(trainer.step) (\(path))")
    }
    trainer.gradientDump = settings.gradientDump
    configure(trainer)
    beforeFirstStep()
    try trainer.train()
    return trainer
  }
}

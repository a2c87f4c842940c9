// What every training run of a job shares: the group it runs on, the dataset, the run
// directory, the loader threads, and how it reports. pretrain, finetune, sweep trials and
// reproduce's stages open one and train through it.
import Data
import Distributed
import Foundation
import Logging
import NN
import Support
import Tensors

public struct TrainingSession {
  public let communicator: Communicator
  public let dataset: PackedDataset
  public let run: RunDirectory
  /// Threads that load and augment batches.
  public let threads: Int
  public let parallel: DataParallelSettings
  /// Runs just before the first training step (the command line's injected faults).
  public var beforeFirstStep: () -> Void
  public var logger = Log.logger("run")

  /// Makes (or reopens) `spec.out` with the options that define it. The batch is checked against
  /// the data before the directory is made, so that a refused run leaves nothing behind.
  public init(
    communicator: Communicator, dataset: PackedDataset, spec: TrainingSpec, defining: [String: String],
    parallel: DataParallelSettings = DataParallelSettings(), beforeFirstStep: @escaping () -> Void = {}
  ) throws {
    guard dataset.train.count >= spec.batch else {
      throw RunSettingsError(description: "--batch \(spec.batch) is larger than the \(dataset.train.count) train images of \(spec.data)")
    }
    self.communicator = communicator
    self.dataset = dataset
    self.parallel = parallel
    self.beforeFirstStep = beforeFirstStep
    run = try RunDirectory(path: spec.out, options: defining)
    threads = spec.loaderThreads ?? BLAS.threadsPerRank
    BLAS.matmulPrecision = spec.precision
  }

  public var isRoot: Bool { communicator.rank == 0 }

  /// A line for people (printed by rank 0).
  public func say(_ line: String) { logger.info("\(line)") }

  /// The dataset at `path` at `imageSize`: a packed directory, or a CelebA-format folder packed
  /// once into a cache beside the run (rank 0 packs, the others wait and reuse it).
  public static func open(_ path: String, imageSize: Int, run: String, communicator: Communicator) throws -> PackedDataset {
    let cache = TrainingData.cache(forRun: URL(fileURLWithPath: run))
    let logger = Log.logger("data")
    func open() throws -> PackedDataset {
      try TrainingData.open(URL(fileURLWithPath: path), imageSize: imageSize, cache: cache) { logger.info("\($0)") }
    }
    if communicator.rank == 0 {
      let dataset = try open()
      try communicator.barrier()
      return dataset
    }
    try communicator.barrier()
    return try open()
  }

  /// Trains `model` with `objective` on the train split (`TrainingRun`), resuming the run if it
  /// has checkpoints; returns the trainer (for its figures), or nil if the run had already finished.
  public func train(
    _ model: ResNet, objective: Objective, transform: Transform, spec: TrainingSpec, learningRate: Double, metadata: [String: Any],
    configure: (Trainer) -> Void = { _ in }
  ) throws -> Trainer? {
    try TrainingRun.train(
      model, objective: objective, transform: transform, dataset: dataset, run: run, communicator: communicator,
      settings: spec.runSettings(learningRate: learningRate, pretraining: objective != .attributes, loaderThreads: threads, parallel: parallel),
      metadata: metadata.merging(["precision": spec.precision.rawValue]) { a, _ in a }, configure: configure, beforeFirstStep: beforeFirstStep)
  }
}

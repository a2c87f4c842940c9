// Fine-tuning a 40-way attribute head with one of the paper's strategies: the model from a
// pretrained checkpoint, the frozen strategy's feature table, training, and the run's end (the
// scores of every split and run.json). `fairtune finetune`, each sweep trial and reproduce's
// seed, probe and epoch-time runs go through `FineTuneJob`.
import Data
import Distributed
import Experiment
import Fairness
import Foundation
import NN
import Support
import Tensors

/// A pretrained checkpoint and the path it was read from.
public struct PretrainedBackbone {
  public let checkpoint: Checkpoint
  public let source: String

  public init(checkpoint: Checkpoint, source: String) {
    self.checkpoint = checkpoint
    self.source = source
  }

  /// Reads `path` once.
  public static func read(_ path: String) throws -> PretrainedBackbone {
    PretrainedBackbone(checkpoint: try Checkpoint.read(path), source: path)
  }
}

public enum FineTuning {
  /// A 40-way model: a pretrained backbone with a fresh head, or (nil: supervised, or the
  /// random-backbone probe) a random one of `spec`'s shape.
  public static func model(_ spec: ModelSpec, pretrained: PretrainedBackbone?, seed: UInt64) throws -> ResNet {
    guard let pretrained else { return try ResNet(spec.configuration(classes: 40), seed: seed) }
    var configuration = try ResNetConfiguration(metadata: pretrained.checkpoint.metadata["model"], source: pretrained.source)
    configuration.projection = nil
    configuration.classes = 40
    let model = try ResNet(configuration, seed: seed)
    let backbone = Dictionary(pretrained.checkpoint.tensors.filter { !$0.name.hasPrefix("fc.") }.map { ($0.name, $0) }) { a, _ in a }
    try model.load(backbone, source: pretrained.source, allowMissingHead: true, allowExtra: true)
    return model
  }

  /// For the frozen strategy on plain images, every image's backbone features computed now
  /// (or `reuse`d: a sweep's frozen trials share one backbone), so that training and
  /// evaluation run only the head; nil for the other strategies, or for a finished run.
  public static func featureCache(
    _ model: ResNet, strategy: Strategy, augmented: Bool, session: TrainingSession, reuse: FeatureCache? = nil
  ) throws -> FeatureCache? {
    guard !session.run.isFinished else { return nil }
    if let reuse, strategy.hasFixedBackbone, !augmented {
      session.say("\(strategy.rawValue) backbone on plain images: the features of \(reuse.count) images computed for an earlier trial are reused")
      return reuse
    }
    let dataset = session.dataset
    let (cache, note) = FeatureCache.forFinetuning(
      model, strategy: strategy, augmented: augmented, images: dataset.train.count + dataset.validation.count + dataset.test.count)
    if let note { session.say("\(strategy.rawValue): \(note)") }
    guard let cache else { return nil }
    try cache.fill(model, dataset: dataset, communicator: session.communicator, threads: session.threads)
    session.say(String(format: "%@ backbone on plain images: features of %d images computed once in %.1f s; training and evaluation run only the head",
      strategy.rawValue, cache.count, cache.fillSeconds))
    return cache
  }

  /// bn-recal's pass over the train images (resumed, or read back, from the run directory); nil
  /// for a finished run.
  public static func recalibrate(
    _ model: ResNet, balance: String?, batch: Int, seed: UInt64, session: TrainingSession
  ) throws -> BatchNormRecalibration.Result? {
    guard !session.run.isFinished else { return nil }
    var recalibration = BatchNormRecalibration(
      batch: batch, seed: seed, balance: try balance.map { try BatchNormRecalibration.balance($0, dataset: session.dataset) })
    recalibration.synchronized = session.parallel.synchronizedBatchNorm
    let what = recalibration.balance.map { "the equal-weight mixture of \($0.name) and not \($0.name)" } ?? "all images pooled"
    session.say("bn-recal: one forward pass over the \(session.dataset.train.count) train images sets every BatchNorm's statistics (\(what))")
    guard let result = try recalibration.run(
      model, dataset: session.dataset, communicator: session.communicator, threads: session.threads, directory: session.run.path,
      say: session.say)
    else { return nil }
    if !result.reused { session.say(String(format: "bn-recal: %d images in %.1f s", result.images, result.seconds)) }
    return result
  }

  /// After training: the scores of every split, the validation mean F1, and RUN/run.json (what
  /// `fairtune report` reads). A run that had already finished is read back from final.ckpt.
  /// With `validation` (a sweep trial's last validation metric), the splits are not scored:
  /// run.json records that metric.
  public static func finish(
    _ model: ResNet, trainer: Trainer?, strategy: Strategy, counts: (parameters: Int, buffers: Int), session: TrainingSession,
    cache: FeatureCache? = nil, tableSeconds: Double = 0, recalibration: BatchNormRecalibration.Result? = nil, balance: String? = nil,
    validation: Double? = nil, head: HeadFit = .trained
  ) throws -> (f1: Double, seconds: Double) {
    let run = session.run
    // The run's feature table and recalibration pass (made for it or shared) are part of its training time.
    var seconds = (trainer?.trainingSeconds ?? 0) + tableSeconds + (recalibration?.seconds ?? 0)
    if trainer == nil {
      let final = try Checkpoint.read(run.finalCheckpoint)
      seconds = (final.metadata["training_seconds"] as? NSNumber)?.doubleValue ?? 0
      if let bytes = try? Data(contentsOf: URL(fileURLWithPath: run.path + "/run.json")),
        let f1 = (try? RunFile.decode(bytes))?.validationMeanF1 {
        return (f1, seconds)
      }
      try model.load(Dictionary(final.tensors.map { ($0.name, $0) }) { a, _ in a }, source: run.finalCheckpoint, allowExtra: true)
    }
    let f1 = try validation
      ?? scoreSplits(model, dataset: session.dataset, into: run.path, communicator: session.communicator, threads: session.threads, cache: cache)
    if session.isRoot {
      let record = RunFile(
        strategy: strategy, updatedParameters: counts.parameters, updatedBuffers: counts.buffers, trainingSeconds: seconds,
        validationMeanF1: f1.isFinite ? f1 : 0, featureTable: cache.map { .init(images: $0.count, seconds: tableSeconds) },
        recalibration: recalibration.map { .init(images: $0.images, seconds: $0.seconds) }, bnBalance: balance,
        precision: BLAS.matmulPrecision.rawValue, head: head == .converged ? head.rawValue : nil,
        collectives: session.communicator.size > 1 ? session.parallel.collectives.rawValue : nil,
        gradientWire: session.communicator.size > 1 ? session.parallel.wire.rawValue : nil)
      try run.writeAtomically(try record.encoded(), to: run.path + "/run.json")
    }
    return (f1, seconds)
  }

  /// Scores of every split into DIR/scores-{train,val,test}.csv (rank 0 writes them); returns
  /// the validation mean F1 with thresholds from train.
  public static func scoreSplits(
    _ model: ResNet, dataset: PackedDataset, into directory: String, communicator: Communicator, threads: Int, batch: Int = 256,
    cache: FeatureCache? = nil
  ) throws -> Double {
    var labeled: [String: LabeledScores] = [:]
    for (name, indices) in [("train", dataset.train), ("val", dataset.validation), ("test", dataset.test)] {
      let scores = try Evaluation.scores(
        model, dataset: dataset, indices: indices, batch: batch, communicator: communicator, threads: threads, cache: cache)
      let set = Evaluation.labeled(scores, dataset: dataset, indices: indices)
      labeled[name] = set
      if communicator.rank == 0 { try Evaluation.writeCSV(set, to: directory + "/scores-\(name).csv") }
    }
    guard let train = labeled["train"], let val = labeled["val"], val.imageCount > 0 else { return .nan }
    return Evaluation.meanF1(train: train, evaluated: val)
  }
}

/// `fairtune evaluate`: a fine-tuned checkpoint scored on every split of a packed dataset.
public struct EvaluationJob {
  public let model: ResNet
  public let dataset: PackedDataset
  public let out: String
  public let batch: Int

  /// Reads the checkpoint and the dataset, checks that the model has a head for every attribute,
  /// and makes `out`.
  public init(model path: String, data: String, out: String, batch: Int) throws {
    dataset = try PackedDataset(path: URL(fileURLWithPath: data))
    model = try Interchange.model(from: try Checkpoint.read(path), source: path)
    guard model.configuration.classes == dataset.attributeCount else {
      throw RunSettingsError(
        description: "--model \(path) has \(model.configuration.classes.map(String.init) ?? "no") outputs; \(data) has \(dataset.attributeCount) attributes: evaluate a fine-tuned model.")
    }
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    self.out = out
    self.batch = batch
  }

  /// Scores into `out`; returns the validation mean F1 with thresholds from train.
  public func run(on communicator: Communicator) throws -> Double {
    try FineTuning.scoreSplits(model, dataset: dataset, into: out, communicator: communicator, threads: BLAS.threadsPerRank, batch: batch)
  }
}

/// One fine-tuning run: a strategy on a pretrained backbone (or supervised from scratch, or the
/// frozen probe on a random backbone), trained and scored into `spec.out`.
public struct FineTuneJob {
  public var strategy: Strategy
  public var spec: TrainingSpec
  /// The model's shape, agreeing with the pretrained checkpoint's.
  public var model: ModelSpec
  /// nil: supervised, or the random-backbone probe.
  public var pretrained: PretrainedBackbone?
  public var randomBackbone = false
  /// Random resized crops and flips while fine-tuning.
  public var augment = false
  /// bn-recal: the attribute whose two groups weigh equally in the statistics.
  public var bnBalance: String?
  /// bn-recal: the seed of the pass's image order (nil: the run's seed).
  public var recalibrationSeed: UInt64?
  /// How the head is fit; `.converged` needs a feature table (a fixed backbone on plain images).
  public var head = HeadFit.trained
  /// The strategy run.json records, with its updated counts, when this run is another's: the
  /// converged head of a strategy's selected model is a frozen run on that model's backbone.
  public var recordedStrategy: Strategy?

  public init(strategy: Strategy, spec: TrainingSpec, model: ModelSpec, pretrained: PretrainedBackbone?) {
    self.strategy = strategy
    self.spec = spec
    self.model = model
    self.pretrained = pretrained
  }

  /// The options that define the run directory.
  public var defining: [String: String] {
    var defining = spec.defining
    defining["command"] = "finetune"
    defining["strategy"] = strategy.rawValue
    defining["from"] = pretrained.map { ($0.source as NSString).standardizingPath } ?? ""
    defining["model"] = model.description
    defining["augment"] = "\(augment)"
    if randomBackbone { defining["random_backbone"] = "true" }
    if let bnBalance { defining["bn_balance"] = bnBalance }
    if let recalibrationSeed { defining["recalibration_seed"] = "\(recalibrationSeed)" }
    if head != .trained { defining["head"] = head.rawValue }
    if let recordedStrategy { defining["recorded_strategy"] = recordedStrategy.rawValue }
    return defining
  }

  /// The model before training: the pretrained backbone with a fresh head, or a random one.
  public func makeModel() throws -> ResNet {
    try FineTuning.model(model, pretrained: pretrained, seed: spec.seed)
  }

  /// Applies the strategy to `network`, makes its setup pass and feature table, trains it in
  /// `session` and finishes the run (scores and run.json): `fairtune finetune`, reproduce's runs
  /// and, with `trial`, every sweep trial. Returns the validation mean F1, the training seconds
  /// and the epoch after which a trial was stopped.
  @discardableResult
  public func run(_ network: ResNet, in session: TrainingSession, trial: TrialHooks? = nil) throws -> FineTuneResult {
    strategy.apply(to: network)
    let recorded = recordedStrategy ?? strategy
    let counts = recorded.updatedCounts(network)
    let what = recordedStrategy.map { "the \($0.rawValue) model's converged head" } ?? strategy.rawValue
    if trial == nil {
      let total = network.registry.parameterCount
      session.say(String(format: "finetune %@: %d of %d parameters (%.2f%%) and %d buffers updated", what, counts.parameters, total,
        100 * Double(counts.parameters) / Double(total), counts.buffers))
    }
    // The setup pass this run used, made here or by an earlier trial: its time is the run's either way.
    var pass: BatchNormRecalibration.Result?
    switch strategy.setupPass {
    case .recalibration?:
      if let shared = trial?.tables.recalibrated {
        BatchNormRecalibration.Finished.apply(shared.statistics, to: network.batchNorms)
        pass = shared.pass
        session.say(String(format: "bn-recal: the statistics of an earlier trial's pass are reused (its %.1f s count in this trial's time)", shared.pass.seconds))
      } else if let result = try FineTuning.recalibrate(
        network, balance: bnBalance, batch: spec.batch, seed: recalibrationSeed ?? spec.seed, session: session)
      {
        pass = result
        trial?.tables.recalibrated = (BatchNormRecalibration.Finished.statistics(of: network.batchNorms), result)
      }
    case nil:
      break
    }
    let reused = trial?.tables.features[strategy]
    let cache = try FineTuning.featureCache(network, strategy: strategy, augmented: augment, session: session, reuse: reused)
    if let cache { trial?.tables.features[strategy] = cache }
    if head == .converged && cache == nil {
      throw RunSettingsError(description: "--head converged solves the head on a feature table: it needs a strategy with a fixed backbone (frozen, bn-recal) on plain images (no --augment)")
    }
    var stoppedAt: Int?
    var lastMetric: Double?
    let headDecay = spec.weightDecay ?? 0
    var metadata = model.checkpointMetadata.merging(
      ["kind": "finetune", "strategy": strategy.rawValue, "options": defining, "updated_parameters": counts.parameters, "updated_buffers": counts.buffers]) { $1 }
    if let trial { metadata["trial"] = trial.id }
    let trainer = try session.train(
      network, objective: .attributes, transform: augment ? .finetuneDefault : .none, spec: spec, learningRate: spec.learningRate(default: 1),
      metadata: metadata
    ) { trainer in
      trainer.featureCache = cache
      if head == .converged { trainer.convergedHead = ConvergedHead(dataset: session.dataset, weightDecay: headDecay) }
      guard let trial else { return }
      trainer.logger = Log.silent
      trainer.afterStep = { _ = trial.progress(nil, nil) }
      trainer.afterEpoch = { [unowned trainer] epoch in
        let f1 = try Evaluation.validationF1(
          network, dataset: session.dataset, trainLimit: trial.thresholdImages, communicator: session.communicator, threads: session.threads,
          cache: cache)
        lastMetric = f1
        if !trial.progress(epoch + 1, f1) {
          trainer.stopRequested = true
          stoppedAt = epoch + 1
        }
      }
    }
    // A table made for an earlier trial counts in this run's time as if this run had made it:
    // what a user running this trial alone would pay.
    let result = try FineTuning.finish(
      network, trainer: trainer, strategy: recorded, counts: counts, session: session, cache: cache, tableSeconds: cache?.fillSeconds ?? 0,
      recalibration: pass, balance: strategy.setupPass == .recalibration ? bnBalance : nil,
      validation: trial?.recordsValidationOnly == true ? lastMetric : nil, head: head)
    if trial == nil {
      session.say(String(format: "finetune %@ done: %.1f s of training, validation mean F1 %.4f", what, result.seconds, result.f1))
    }
    return FineTuneResult(f1: result.f1, seconds: result.seconds, stoppedAt: stoppedAt)
  }
}

/// How a fine-tuning run ended.
public struct FineTuneResult {
  /// The validation mean F1 (thresholds from train).
  public let f1: Double
  /// Training seconds, with the run's own setup pass and feature table.
  public let seconds: Double
  /// The epoch after which a sweep trial was stopped (ASHA), if it was.
  public let stoppedAt: Int?
}

/// What a sweep trial adds to a fine-tuning run: the passes and tables it shares with the
/// process's other trials, its progress reported to the coordinator, and how it is scored.
public struct TrialHooks {
  public let id: String
  let tables: FeatureTables
  /// Train images that set the thresholds of the per-epoch validation metric.
  let thresholdImages: Int
  /// Called after every step (nil, nil) and every epoch (the epoch, its validation metric);
  /// false stops the trial.
  let progress: (Int?, Double?) -> Bool
  /// The run records its last validation metric instead of scoring every split.
  let recordsValidationOnly: Bool
}

/// What the trials of one process share: a strategy with a fixed backbone gets one feature table
/// (every trial fine-tunes the same backbone on the same images), and bn-recal's statistics
/// (means then variances of every BatchNorm) come from one pass. Each trial's time counts the
/// table's fill and the pass whichever trial made them.
final class FeatureTables {
  var features: [Strategy: FeatureCache] = [:]
  var recalibrated: (statistics: [Float], pass: BatchNormRecalibration.Result)?
}

// What a training run is asked for, as values: the model's shape (ModelSpec) and the training
// options (TrainingSpec) that pretrain, finetune, sweep trials and reproduce's stages share. The
// command line parses into these; reproduce and the sweep build them directly.
import Foundation
import Tensors
import NN

/// A model's architecture and input size.
public struct ModelSpec: Sendable, Equatable {
  /// resnet18, resnet34 or resnet50.
  public var model: String
  /// Channel multiplier (1: torchvision's channels).
  public var width: Double
  /// imagenet or small.
  public var stem: String
  public var imageSize: Int

  public init(model: String, width: Double, stem: String, imageSize: Int) {
    self.model = model
    self.width = width
    self.stem = stem
    self.imageSize = imageSize
  }

  /// The network these describe (the names have been checked).
  public func configuration(classes: Int?) -> ResNetConfiguration {
    ResNetConfiguration(depth: ResNetDepth(rawValue: model)!, stem: Stem(rawValue: stem)!, width: width, classes: classes)
  }

  /// The names `--model` takes.
  public static let modelNames = ResNetDepth.allCases.map(\.rawValue)

  /// What is wrong with these names and sizes, as a sentence that names the option; nil when
  /// they describe a model.
  public var problem: String? {
    guard ResNetDepth(rawValue: model) != nil else { return "--model '\(model)' is not a model: use resnet18, resnet34 or resnet50." }
    guard let kind = Stem(rawValue: stem) else { return "--stem '\(stem)' is not a stem: use imagenet or small." }
    if let problem = ResNetConfiguration.widthProblem(width) { return "--width \(problem)." }
    guard imageSize > 0 else { return "--image-size must be positive (got \(imageSize))." }
    let minimum = kind == .imagenet ? 32 : 8
    guard imageSize >= minimum else { return "--image-size \(imageSize) is too small for the \(stem) stem: use at least \(minimum)." }
    return nil
  }

  /// The model a checkpoint holds (its image size when it records one; an imported checkpoint
  /// does not), or an error naming `source`.
  public static func recorded(in checkpoint: Checkpoint, source: String) throws -> (model: String, width: Double, stem: String, imageSize: Int?) {
    let configuration = try ResNetConfiguration(metadata: checkpoint.metadata["model"], source: source)
    return (configuration.depth.rawValue, configuration.width, configuration.stem.rawValue, (checkpoint.metadata["image_size"] as? NSNumber)?.intValue)
  }

  /// How run.json's options and options.json name the model.
  public var description: String { "\(model) width \(width) stem \(stem) size \(imageSize)" }

  /// What a checkpoint made with this model records of it beside its model description.
  public var checkpointMetadata: [String: Any] { ["image_size": imageSize] }
}

/// How a run spreads over the ranks: synchronized BatchNorm, the all-reduce's buckets, and the
/// test-only replica perturbation.
public struct DataParallelSettings: Sendable {
  public var synchronizedBatchNorm: Bool
  public var bucketBytes: Int
  public var perturbRank: Int?
  public var collectives: CollectiveSchedule
  /// The priority schedule's chunk (tests make it small, so that a tiny model's buckets split).
  public var chunkBytes: Int
  /// The gradients' number format on the link.
  public var wire: GradientWire

  public init(
    synchronizedBatchNorm: Bool = true, bucketBytes: Int = 25 << 20, perturbRank: Int? = nil, collectives: CollectiveSchedule = .priority,
    chunkBytes: Int = GradientReducer.defaultChunkBytes, wire: GradientWire = .fp32
  ) {
    self.chunkBytes = chunkBytes
    self.wire = wire
    self.synchronizedBatchNorm = synchronizedBatchNorm
    self.bucketBytes = bucketBytes
    self.perturbRank = perturbRank
    self.collectives = collectives
  }
}

/// The training options of one run. nil means the command's default (pretrain: LARS, lr 0.3 per
/// 256 images, weight decay 1e-6; finetune: SGD, lr 1, no weight decay).
public struct TrainingSpec: Sendable {
  /// A packed directory, or a CelebA-format folder packed on first use beside the run.
  public var data: String
  /// The run directory.
  public var out: String
  public var batch: Int = 64
  public var epochs: Int = 1
  public var steps: Int?
  public var seed: UInt64 = 0
  public var optimizer: OptimizerKind?
  public var learningRate: Double?
  public var momentum: Double = 0.9
  public var nesterov = false
  public var weightDecay: Double?
  public var schedule: ScheduleKind = .cosine
  public var warmupEpochs: Double = 0
  public var checkpointEvery: Int?
  public var keep = 3
  public var loaderThreads: Int?
  /// What GEMMs multiply (`PrecisionRequest`); the session sets it for the process.
  public var precision = Precision.fp32
  /// Tests: the first step's loss and summed gradients, written here.
  public var gradientDump: String?

  public init(data: String, out: String) {
    self.data = data
    self.out = out
  }

  /// A sweep trial's settings (also the sweep's best settings trained again with another seed).
  public static func trial(_ settings: TrialSettings, data: String, out: String, batch: Int, seed: UInt64? = nil) -> TrainingSpec {
    var spec = TrainingSpec(data: data, out: out)
    spec.batch = batch
    spec.epochs = settings.epochs
    spec.seed = seed ?? settings.seed
    spec.optimizer = OptimizerKind(rawValue: settings.optimizer)
    spec.learningRate = settings.learningRate
    spec.weightDecay = settings.weightDecay
    spec.schedule = ScheduleKind(rawValue: settings.schedule) ?? .cosine
    spec.warmupEpochs = Double(settings.warmupEpochs)
    return spec
  }

  public func learningRate(default value: Double) -> Double { learningRate ?? value }

  /// The defaults fill what was not given: pretraining uses LARS and weight decay 1e-6
  /// (SimCLR's), fine-tuning SGD without weight decay. When fine-tuning, Adam and AdamW give the
  /// classifier head `adamClassifierScale` times the learning rate; SGD and LARS give it the same
  /// rate (LARS without trust-ratio adaptation).
  public func optimizerSettings(learningRate: Double, pretraining: Bool) -> OptimizerSettings {
    OptimizerSettings(
      kind: optimizer ?? (pretraining ? .lars : .sgd), learningRate: Float(learningRate),
      momentum: Float(momentum), nesterov: nesterov, weightDecay: Float(weightDecay ?? (pretraining ? 1e-6 : 0)),
      classifierScale: pretraining ? 1 : Self.adamClassifierScale)
  }

  /// The classifier head's learning-rate multiplier under Adam and AdamW when fine-tuning.
  public static let adamClassifierScale: Float = 30

  /// Everything a `TrainingRun` takes besides the model and the data.
  public func runSettings(learningRate: Double, pretraining: Bool, loaderThreads: Int, parallel: DataParallelSettings) -> RunSettings {
    RunSettings(
      batch: batch, epochs: epochs, steps: steps, seed: seed,
      optimizer: optimizerSettings(learningRate: learningRate, pretraining: pretraining),
      schedule: schedule, warmupEpochs: warmupEpochs, checkpointEvery: checkpointEvery, keep: keep,
      loaderThreads: loaderThreads, synchronizedBatchNorm: parallel.synchronizedBatchNorm, bucketBytes: parallel.bucketBytes,
      perturbRank: parallel.perturbRank, gradientDump: gradientDump, collectives: parallel.collectives, wire: parallel.wire)
  }

  /// The options that define a run (a re-run with different ones is refused). The precision
  /// only when it is not fp32, so that runs made before it existed still resume.
  public var defining: [String: String] {
    var defining: [String: String] = [
      "data": (data as NSString).standardizingPath, "batch": "\(batch)", "epochs": "\(epochs)", "steps": steps.map(String.init) ?? "",
      "seed": "\(seed)", "optimizer": optimizer?.rawValue ?? "", "lr": learningRate.map { "\($0)" } ?? "", "momentum": "\(momentum)",
      "nesterov": "\(nesterov)", "weight-decay": weightDecay.map { "\($0)" } ?? "", "schedule": schedule.rawValue,
      "warmup-epochs": "\(warmupEpochs)",
    ]
    if precision != .fp32 { defining["precision"] = precision.rawValue }
    return defining
  }
}

// `fairtune pretrain`, `fairtune finetune` and `fairtune evaluate`.
import ArgumentParser
import Data
import Distributed
import Experiment
import Fairness
import Foundation
import NN
import Tensors
import Training

/// What pretrain and finetune share: joining the job, the dataset, the run directory, the
/// resume point, and the trainer around a prepared model.
struct Session {
  let launch: Launch
  let dataset: PackedDataset
  let run: RunDirectory
  let threads: Int

  init(_ training: TrainingOptions, _ distributed: DistributedOptions, model: ModelOptions, defining: [String: String]) throws {
    let launch = try Launch.start(distributed)
    let dataset = try Session.open(training.data, model: model, run: training.out, launch: launch)
    try self.init(launch: launch, dataset: dataset, training: training, defining: defining)
  }

  init(launch: Launch, dataset: PackedDataset, training: TrainingOptions, defining: [String: String]) throws {
    self.launch = launch
    self.dataset = dataset
    // Checked before the run directory is made, so that a refused run leaves nothing behind.
    guard dataset.train.count >= training.batch else {
      throw ValidationError("--batch \(training.batch) is larger than the \(dataset.train.count) train images of \(training.data)")
    }
    run = try RunDirectory(path: training.out, options: defining)
    threads = training.loaderThreads ?? BLAS.threadsPerRank
  }

  /// The dataset at `path` at --image-size: a packed directory, or a CelebA-format folder packed
  /// once into a cache beside the run (rank 0 packs, the others wait and reuse it).
  static func open(_ path: String, model: ModelOptions, run: String, launch: Launch) throws -> PackedDataset {
    let cache = TrainingData.cache(forRun: URL(fileURLWithPath: run))
    func open() throws -> PackedDataset {
      try TrainingData.open(URL(fileURLWithPath: path), imageSize: model.imageSize, cache: cache) { launch.say($0) }
    }
    if launch.isRoot {
      let dataset = try open()
      try launch.communicator.barrier()
      return dataset
    }
    try launch.communicator.barrier()
    return try open()
  }

  /// Trains `model` with `objective` on the train split (`TrainingRun`), resuming the run if it
  /// has checkpoints; returns the trainer (for its figures), or nil if the run had already finished.
  func train(
    _ model: ResNet, objective: Objective, transform: Transform, training: TrainingOptions, distributed: DistributedOptions,
    learningRate: Double, metadata: [String: Any], configure: (Trainer) -> Void = { _ in }
  ) throws -> Trainer? {
    try TrainingRun.train(
      model, objective: objective, transform: transform, dataset: dataset, run: run, communicator: launch.communicator,
      settings: training.runSettings(learningRate: learningRate, pretraining: objective != .attributes, loaderThreads: threads, distributed: distributed),
      metadata: metadata, configure: configure, beforeFirstStep: { launch.injectFaults(distributed) })
  }
}

struct PretrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pretrain",
    abstract: "SimCLR pretraining (no labels): two augmented views per image, NT-Xent over the global batch.",
    discussion: paragraphs("""
      Every rank's embeddings are gathered, so each anchor sees all 2B-2 negatives of the global
      batch; BatchNorm is synchronized over all ranks (--bn sync). The learning rate is
      --lr x batch / 256 (LARS by default, trust coefficient 0.001, BatchNorm and biases excluded
      from adaptation and weight decay), with a linear warmup then cosine decay. Writes
      RUN/metrics.jsonl (loss, contrastive top-1, lr, img/s per step), RUN/checkpoints/ and
      RUN/final.ckpt, the backbone for `fairtune finetune --from`.
      """))

  @OptionGroup var modelOptions: ModelOptions
  @OptionGroup var training: TrainingOptions
  @OptionGroup var distributed: DistributedOptions

  @Option(help: "NT-Xent temperature.")
  var temperature: Double = 0.1

  @Option(help: "Output width of the projection head (Linear-BN-ReLU-Linear).")
  var projectionDimension: Int = 128

  @Option(help: "Hidden width of the projection head (default: the backbone's feature width).")
  var projectionHidden: Int?

  @Option(help: "Colour-jitter strength s (brightness, contrast, saturation 0.8s, hue 0.2s).")
  var colorStrength: Double = 1.0

  @Flag(help: "Add SimCLR's Gaussian blur to the augmentations.")
  var blur = false

  func validate() throws {
    guard temperature > 0, temperature.isFinite else { throw ValidationError("--temperature must be positive (got \(temperature)).") }
    guard projectionDimension > 0 else { throw ValidationError("--projection-dimension must be positive (got \(projectionDimension)).") }
    if let h = projectionHidden, h <= 0 { throw ValidationError("--projection-hidden must be positive (got \(h)).") }
    guard colorStrength >= 0, colorStrength <= 4 else { throw ValidationError("--color-strength must be in [0, 4] (got \(colorStrength)).") }
  }

  func run() throws {
    let modelOptions = try self.modelOptions.adoptingImageSize(ofData: training.data)
    var defining = training.defining
    defining["command"] = "pretrain"
    defining["model"] = "\(modelOptions.model) width \(modelOptions.width) stem \(modelOptions.stem) size \(modelOptions.imageSize)"
    defining["temperature"] = "\(temperature)"
    defining["projection"] = "\(projectionHidden.map(String.init) ?? "auto")x\(projectionDimension)"
    defining["augment"] = "s=\(colorStrength) blur=\(blur)"
    let session: Session
    do { session = try Session(training, distributed, model: modelOptions, defining: defining) } catch { throw ValidationError("\(error)") }
    do {
      let probe = try ResNet(modelOptions.configuration(classes: nil))
      var configuration = modelOptions.configuration(classes: nil)
      configuration.projection = ProjectionSize(hidden: projectionHidden ?? probe.featureDimension, output: projectionDimension)
      let model = try ResNet(configuration, seed: training.seed)
      let learningRate = training.learningRate(default: 0.3) * Double(training.batch) / 256
      session.launch.say("pretrain: \(modelOptions.model) (\(model.registry.parameterCount) parameters), \(session.dataset.train.count) train images, global batch \(training.batch) on \(session.launch.communicator.size) rank(s), lr \(learningRate)")
      guard let trainer = try session.train(
        model, objective: .simclr(temperature: Float(temperature)),
        transform: .simCLR(SimCLRAugmentation(strength: Float(colorStrength), blur: blur)), training: training,
        distributed: distributed, learningRate: learningRate,
        metadata: modelOptions.checkpointMetadata.merging(["kind": "pretrain", "options": defining]) { $1 })
      else { return }
      session.launch.say(String(format: "pretraining done: %d steps, %.1f s; %@", trainer.step, trainer.trainingSeconds, session.run.finalCheckpoint))
    } catch {
      session.launch.fail(error)
    }
  }
}

struct FinetuneCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "finetune",
    abstract: "Train a 40-way attribute head on a pretrained backbone with one of the paper's strategies (or a supervised model).",
    discussion: paragraphs("""
      Strategies: frozen (only the head; BatchNorm in eval mode), bn-stats (head; BatchNorm
      statistics updated), bn-stats-affine (+ every BatchNorm weight and bias), bn-stats-skip
      (+ the downsample shortcuts), full (everything); supervised trains everything from a random
      initialisation (no --from). Nothing below the lowest trainable parameter is
      differentiated, and frozen weights get no gradient GEMMs.

      frozen on plain images computes every image's backbone features once; its head is then a
      convex problem (40 logistic regressions with L2 weight decay --weight-decay on the weights),
      solved with L-BFGS (in standardized feature coordinates, the same minimiser) until the
      largest gradient component is below 1e-6 (at most 1000 iterations; metrics.jsonl records
      the loss of each iteration and whether it converged; docs/search.md).
      --optimizer, --lr, --epochs and the schedule do not apply there.

      At the end, writes the scores of
      every train, val and test image (RUN/scores-{train,val,test}.csv), the validation mean F1
      with thresholds from train, and RUN/run.json for `fairtune report`.
      """))

  @OptionGroup var modelOptions: ModelOptions
  @OptionGroup var training: TrainingOptions
  @OptionGroup var distributed: DistributedOptions

  @Option(help: "The pretrained checkpoint (from `fairtune pretrain` or `fairtune import`); not with --strategy supervised.")
  var from: String?

  @Option(help: "frozen, bn-stats, bn-stats-affine, bn-stats-skip, full or supervised.")
  var strategy: String

  @Flag(help: "Random resized crops (scale 0.5-1) and flips while fine-tuning (frozen and bn-stats train on the plain images otherwise).")
  var augment = false

  @Flag(help: "Fine-tune a randomly initialised backbone instead of --from (with --strategy frozen: the linear-probe control that shows what pretraining added).")
  var randomBackbone = false

  func validate() throws {
    guard let s = Strategy(rawValue: strategy) else {
      throw ValidationError("--strategy '\(strategy)' is not a strategy: use \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")).")
    }
    if s == .supervised && from != nil { throw ValidationError("--strategy supervised trains from scratch: drop --from.") }
    if randomBackbone && from != nil { throw ValidationError("--random-backbone replaces --from: pass one of them.") }
    if randomBackbone && s == .supervised { throw ValidationError("--random-backbone is for the fine-tuning strategies; supervised starts from a random backbone anyway.") }
    if s != .supervised && from == nil && !randomBackbone { throw ValidationError("--strategy \(strategy) fine-tunes a pretrained backbone: pass --from CKPT.") }
    if let from, !FileManager.default.fileExists(atPath: from) { throw ValidationError("--from \(from): no such file.") }
  }

  func run() throws {
    let strategy = Strategy(rawValue: self.strategy)!
    // The checkpoint is read (and the options checked against it) before the run directory is made.
    let pretrained = try FinetuneCommand.pretrained(from)
    let modelOptions = try FinetuneCommand.options(self.modelOptions, pretrained: pretrained, data: training.data)
    var defining = training.defining
    defining["command"] = "finetune"
    defining["strategy"] = strategy.rawValue
    defining["from"] = from.map { ($0 as NSString).standardizingPath } ?? ""
    defining["model"] = "\(modelOptions.model) width \(modelOptions.width) stem \(modelOptions.stem) size \(modelOptions.imageSize)"
    defining["augment"] = "\(augment)"
    if randomBackbone { defining["random_backbone"] = "true" }
    let model: ResNet
    do { model = try FinetuneCommand.model(modelOptions, pretrained: pretrained, seed: training.seed) } catch { throw ValidationError("\(error)") }
    let session: Session
    do { session = try Session(training, distributed, model: modelOptions, defining: defining) } catch { throw ValidationError("\(error)") }
    do {
      strategy.apply(to: model)
      let counts = strategy.updatedCounts(model)
      let total = model.registry.parameterCount
      session.launch.say(String(format: "finetune %@: %d of %d parameters (%.2f%%) and %d buffers updated", strategy.rawValue, counts.parameters, total, 100 * Double(counts.parameters) / Double(total), counts.buffers))
      let cache = try FinetuneCommand.featureCache(model, strategy: strategy, augmented: augment, session: session)
      let trainer = try session.train(
        model, objective: .attributes, transform: augment ? .finetuneDefault : .none, training: training, distributed: distributed,
        learningRate: training.learningRate(default: 1),
        metadata: modelOptions.checkpointMetadata.merging(
          ["kind": "finetune", "strategy": strategy.rawValue, "options": defining,
            "updated_parameters": counts.parameters, "updated_buffers": counts.buffers]) { $1 }
      ) { trainer in
        trainer.featureCache = cache
        if cache != nil {
          trainer.convergedHead = ConvergedHead(dataset: session.dataset, weightDecay: Double(training.weightDecay ?? 0))
        }
      }
      let validation = try FinetuneCommand.finish(model, trainer: trainer, strategy: strategy, counts: counts, session: session, cache: cache,
        tableSeconds: cache?.fillSeconds ?? 0)
      session.launch.say(String(format: "finetune %@ done: %.1f s of training, validation mean F1 %.4f", strategy.rawValue, validation.seconds, validation.f1))
    } catch {
      session.launch.fail(error)
    }
  }

  /// For the frozen strategy on plain images, every image's backbone features computed now
  /// (or `reuse`d: a sweep's frozen trials share one backbone), so that training and
  /// evaluation run only the head; nil for the other strategies, or for a finished run.
  static func featureCache(_ model: ResNet, strategy: Strategy, augmented: Bool, session: Session, reuse: FeatureCache? = nil) throws -> FeatureCache? {
    guard !session.run.isFinished else { return nil }
    if let reuse, strategy == .frozen, !augmented {
      session.launch.say("frozen backbone on plain images: the features of \(reuse.count) images computed for an earlier trial are reused")
      return reuse
    }
    let dataset = session.dataset
    let (cache, note) = FeatureCache.forFinetuning(
      model, strategy: strategy, augmented: augmented, images: dataset.train.count + dataset.validation.count + dataset.test.count)
    if let note { session.launch.say("frozen: \(note)") }
    guard let cache else { return nil }
    try cache.fill(model, dataset: dataset, communicator: session.launch.communicator, threads: session.threads)
    session.launch.say(String(format: "frozen backbone on plain images: features of %d images computed once in %.1f s; training and evaluation run only the head",
      cache.count, cache.fillSeconds))
    return cache
  }

  /// After training: the scores of every split, the validation mean F1, and RUN/run.json (what
  /// `fairtune report` reads). A run that had already finished is read back from final.ckpt.
  /// With `validation` (a sweep trial's last validation metric), the splits are not scored:
  /// run.json records that metric.
  static func finish(
    _ model: ResNet, trainer: Trainer?, strategy: Strategy, counts: (parameters: Int, buffers: Int), session: Session, cache: FeatureCache? = nil,
    tableSeconds: Double = 0, validation: Double? = nil
  ) throws -> (f1: Double, seconds: Double)
  {
    let run = session.run
    // A feature table made for this run is part of its training time.
    var seconds = (trainer?.trainingSeconds ?? 0) + tableSeconds
    if trainer == nil {
      let final = try Checkpoint.read(run.finalCheckpoint)
      seconds = (final.metadata["training_seconds"] as? NSNumber)?.doubleValue ?? 0
      if let bytes = try? Data(contentsOf: URL(fileURLWithPath: run.path + "/run.json")),
        let f1 = (try? RunFile.decode(bytes))?.validationMeanF1 {
        return (f1, seconds)
      }
      try model.load(Dictionary(final.tensors.map { ($0.name, $0) }) { a, _ in a }, source: run.finalCheckpoint, allowExtra: true)
    }
    let f1 = try validation ?? EvaluateCommand.evaluate(model, dataset: session.dataset, into: run.path, launch: session.launch, threads: session.threads, cache: cache)
    if session.launch.isRoot {
      let record = RunFile(
        strategy: strategy, updatedParameters: counts.parameters, updatedBuffers: counts.buffers, trainingSeconds: seconds,
        validationMeanF1: f1.isFinite ? f1 : 0, featureTable: cache.map { .init(images: $0.count, seconds: tableSeconds) })
      try run.writeAtomically(try record.encoded(), to: run.path + "/run.json")
    }
    return (f1, seconds)
  }

  /// The checkpoint `--from` names, read once (nil without --from); an unreadable one is a
  /// usage error naming it.
  static func pretrained(_ from: String?) throws -> (checkpoint: Checkpoint, source: String)? {
    guard let from else { return nil }
    do { return (try Checkpoint.read(from), from) } catch { throw ValidationError("--from \(error)") }
  }

  /// The model options of a fine-tuning run: what the command line gave, the rest from the
  /// pretrained checkpoint, and the image size from a packed --data when nothing says it.
  static func options(_ given: ModelOptions, pretrained: (checkpoint: Checkpoint, source: String)?, data: String) throws -> ModelOptions {
    do {
      let adopted = try pretrained.map { try given.adopting($0.checkpoint, source: $0.source) } ?? given
      return try adopted.adoptingImageSize(ofData: data)
    } catch let error as ValidationError { throw error } catch { throw ValidationError("--from \(error)") }
  }

  /// A 40-way model: a pretrained backbone with a fresh head, or (supervised) a random one.
  /// `options` have been adopted from the checkpoint (`options(_:pretrained:data:)`).
  static func model(_ options: ModelOptions, pretrained: (checkpoint: Checkpoint, source: String)?, seed: UInt64) throws -> ResNet {
    guard let (ckpt, from) = pretrained else { return try ResNet(options.configuration(classes: 40), seed: seed) }
    var configuration = try ResNetConfiguration(metadata: ckpt.metadata["model"], source: from)
    configuration.projection = nil
    configuration.classes = 40
    let model = try ResNet(configuration, seed: seed)
    let backbone = Dictionary(ckpt.tensors.filter { !$0.name.hasPrefix("fc.") }.map { ($0.name, $0) }) { a, _ in a }
    try model.load(backbone, source: from, allowMissingHead: true, allowExtra: true)
    return model
  }
}

struct EvaluateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract: "Scores (40 logits) of every train, val and test image; thresholds from train; mean F1.",
    discussion: "Writes RUN/scores-train.csv, scores-val.csv and scores-test.csv (header `image,<the 40 attribute names>`), the input of `fairtune fairness`.")

  @Option(help: "A packed dataset directory.")
  var data: String

  @Option(help: "The model checkpoint (a fine-tuned or supervised model with a 40-way head).")
  var model: String

  @Option(help: "Where the scores go.")
  var out: String

  @Option(help: "Images per forward pass.")
  var batch: Int = 256

  @OptionGroup var distributed: DistributedOptions

  func validate() throws {
    guard batch > 0 else { throw ValidationError("--batch must be positive (got \(batch)).") }
  }

  func run() throws {
    let launch: Launch
    let dataset: PackedDataset
    let resnet: ResNet
    do {
      launch = try Launch.start(distributed)
      dataset = try PackedDataset(path: URL(fileURLWithPath: data))
      resnet = try Interchange.model(from: try Checkpoint.read(model), source: model)
      guard resnet.configuration.classes == dataset.attributeCount else {
        throw ValidationError("--model \(model) has \(resnet.configuration.classes.map(String.init) ?? "no") outputs; \(data) has \(dataset.attributeCount) attributes: evaluate a fine-tuned model.")
      }
      try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    } catch let error as ValidationError {
      throw error
    } catch {
      throw ValidationError("\(error)")
    }
    do {
      let f1 = try Self.evaluate(resnet, dataset: dataset, into: out, launch: launch, threads: BLAS.threadsPerRank, batch: batch)
      launch.say(String(format: "validation mean F1 %.4f (thresholds from train); scores in %@", f1, out))
    } catch {
      launch.fail(error)
    }
  }

  /// Scores of every split into DIR/scores-{train,val,test}.csv; returns the validation mean F1.
  static func evaluate(
    _ model: ResNet, dataset: PackedDataset, into directory: String, launch: Launch, threads: Int, batch: Int = 256, cache: FeatureCache? = nil
  ) throws -> Double {
    var labeled: [String: LabeledScores] = [:]
    for (name, indices) in [("train", dataset.train), ("val", dataset.validation), ("test", dataset.test)] {
      let scores = try Evaluation.scores(
        model, dataset: dataset, indices: indices, batch: batch, communicator: launch.communicator, threads: threads, cache: cache)
      let set = Evaluation.labeled(scores, dataset: dataset, indices: indices)
      labeled[name] = set
      if launch.isRoot { try Evaluation.writeCSV(set, to: directory + "/scores-\(name).csv") }
    }
    guard let train = labeled["train"], let val = labeled["val"], val.imageCount > 0 else { return .nan }
    return Evaluation.meanF1(train: train, evaluated: val)
  }
}

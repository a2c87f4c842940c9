// `fairtune pretrain`, `fairtune finetune` and `fairtune evaluate`: their options, checked and
// parsed into the library's jobs (Training: PretrainJob, FineTuneJob), which do the work.
import ArgumentParser
import CelebAFormat
import Data
import Distributed
import Experiment
import Fairness
import Foundation
import Training

/// Opens the dataset of a training command's run at `model`'s image size (see
/// `TrainingSession.open`).
/// --bn-balance: an attribute name, and only where a bn-recal run uses it.
func checkBalance(_ balance: String?, strategies: [Strategy]) throws {
  guard let balance else { return }
  guard strategies.contains(where: { $0.setupPass == .recalibration }) else {
    throw ValidationError("--bn-balance \(balance) applies to bn-recal only: add that strategy or drop --bn-balance.")
  }
  guard CelebA.attributeNames.contains(where: { $0.lowercased() == balance.lowercased() }) else {
    throw ValidationError("--bn-balance \(balance) is not one of the 40 CelebA attributes (for example Male, Young, Eyeglasses).")
  }
}

func openDataset(_ training: TrainingOptions, model: ModelOptions, launch: Launch) throws -> PackedDataset {
  try TrainingSession.open(training.data, imageSize: model.imageSize, run: training.out, communicator: launch.communicator)
}

struct PretrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pretrain",
    abstract: "SimCLR pretraining (no labels): two augmented views per image, NT-Xent over the global batch.",
    discussion: paragraphs("""
      Every rank's embeddings are gathered, so each anchor sees all 2B-2 negatives of the global
      batch; BatchNorm is synchronized over all ranks (--bn sync). The learning rate is
      --lr x batch / 256 (LARS by default, trust coefficient 0.001, BatchNorm and biases excluded
      from adaptation and weight decay), with a linear warmup then cosine decay. An epoch's last
      partial batch is dropped (fewer negatives would give a lower loss). Writes
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

  @Option(help: "The smallest fraction of the image's area a random resized crop keeps (SimCLR's 0.08; small faces whose attributes are small keep more with a larger one).")
  var minCropScale: Double = 0.08

  @Option(help: ArgumentHelp(
    "Train images of the representation monitor's kNN bank; 0 turns it off.",
    discussion: "Before the first step and after every epoch, these train images (a fixed draw) vote, by their 20 nearest neighbours in the backbone's pooled features, for half as many validation images; the validation mean F1 of the votes (thresholds from the bank) goes to metrics.jsonl as knn_mean_f1, to the progress line and to the report's pretraining figure."))
  var monitorImages: Int = 768

  func validate() throws {
    guard temperature > 0, temperature.isFinite else { throw ValidationError("--temperature must be positive (got \(temperature)).") }
    guard projectionDimension > 0 else { throw ValidationError("--projection-dimension must be positive (got \(projectionDimension)).") }
    if let h = projectionHidden, h <= 0 { throw ValidationError("--projection-hidden must be positive (got \(h)).") }
    guard colorStrength >= 0, colorStrength <= 4 else { throw ValidationError("--color-strength must be in [0, 4] (got \(colorStrength)).") }
    guard minCropScale > 0, minCropScale <= 1 else { throw ValidationError("--min-crop-scale must be in (0, 1] (got \(minCropScale)).") }
    guard monitorImages >= 0 else { throw ValidationError("--monitor-images cannot be negative (got \(monitorImages)); use 0 to turn the monitor off.") }
  }

  func run() throws {
    let modelOptions = try self.modelOptions.adoptingImageSize(ofData: training.data)
    var job = PretrainJob(spec: training.spec, model: modelOptions.spec)
    job.temperature = temperature
    job.projectionDimension = projectionDimension
    job.projectionHidden = projectionHidden
    job.colorStrength = colorStrength
    job.blur = blur
    job.monitorImages = monitorImages
    job.minimumCropScale = minCropScale
    let launch: Launch
    let session: TrainingSession
    do {
      launch = try distributed.launch()
      session = try launch.session(try openDataset(training, model: modelOptions, launch: launch), spec: job.spec, defining: job.defining, parallel: distributed.parallel)
    } catch { throw ValidationError("\(error)") }
    if let notice = training.precision.resolved.notice { session.say(notice) }
    do {
      try job.run(in: session)
    } catch {
      launch.fail(error)
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

      bn-recal (not in the paper) trains only the head, as frozen, after one forward pass over the
      train images (plain, in batches of --batch) that sets every BatchNorm's running statistics
      to the exact mean and variance of its input over all of them (sums in Double, over all
      ranks; no moving average); BatchNorm then stays in eval mode. --bn-balance ATTR makes them
      the equal-weight mixture of the images with and without ATTR. The pass saves its progress
      in RUN/recalibration-partial.json and its result in RUN/recalibration.json, and resumes
      from them (docs/strategies.md).

      frozen and bn-recal on plain images compute every image's backbone features once, and their
      head then trains on the feature table, by the optimizer, rate, schedule and epochs given, as
      every strategy's does (the paper's protocol). With --head converged the head is instead a
      convex problem (40 logistic regressions with L2 weight decay --weight-decay on the weights),
      solved with L-BFGS (in standardized feature coordinates, the same minimiser) until the
      largest gradient component is below 1e-6 (at most 1000 iterations; metrics.jsonl records
      the loss of each iteration and whether it converged; docs/search.md); --optimizer, --lr,
      --epochs and the schedule do not apply there.

      At the end, writes the scores of
      every train, val and test image (RUN/scores-{train,val,test}.csv), the validation mean F1
      with thresholds from train, and RUN/run.json for `fairtune report`.
      """))

  @OptionGroup var modelOptions: ModelOptions
  @OptionGroup var training: TrainingOptions
  @OptionGroup var distributed: DistributedOptions

  @Option(help: "The pretrained checkpoint (from `fairtune pretrain` or `fairtune import`); not with --strategy supervised.")
  var from: String?

  @Option(help: "frozen, bn-recal, bn-stats, bn-stats-affine, bn-stats-skip, full or supervised.")
  var strategy: Strategy

  @Option(help: "With --strategy bn-recal: BatchNorm statistics that weigh the train images with and without this attribute (one of the 40, e.g. Male) equally, instead of pooling all images.")
  var bnBalance: String?

  @Flag(help: "Random resized crops (scale 0.5-1) and flips while fine-tuning (frozen and bn-stats train on the plain images otherwise).")
  var augment = false

  @Flag(help: "Fine-tune a randomly initialised backbone instead of --from (with --strategy frozen: the linear-probe control that shows what pretraining added).")
  var randomBackbone = false

  @Option(help: "How the head is fit: trained (by the optimizer, as every strategy; the paper's protocol) or converged (solved by L-BFGS on the feature table; frozen and bn-recal on plain images only).")
  var head: HeadFit = .trained

  func validate() throws {
    let s = strategy
    if !s.startsFromPretrainedBackbone && from != nil { throw ValidationError("--strategy \(s.rawValue) trains from scratch: drop --from.") }
    if randomBackbone && from != nil { throw ValidationError("--random-backbone replaces --from: pass one of them.") }
    if randomBackbone && !s.startsFromPretrainedBackbone { throw ValidationError("--random-backbone is for the fine-tuning strategies; supervised starts from a random backbone anyway.") }
    if s.startsFromPretrainedBackbone && from == nil && !randomBackbone { throw ValidationError("--strategy \(s.rawValue) fine-tunes a pretrained backbone: pass --from CKPT.") }
    if let from, !FileManager.default.fileExists(atPath: from) { throw ValidationError("--from \(from): no such file.") }
    if head == .converged && (!s.hasFixedBackbone || augment) {
      throw ValidationError("--head converged solves the head on a feature table: use it with --strategy frozen or bn-recal, without --augment.")
    }
    try checkBalance(bnBalance, strategies: [s])
  }

  func run() throws {
    // The checkpoint is read (and the options checked against it) before the run directory is made.
    let pretrained = try FinetuneCommand.pretrained(from)
    let modelOptions = try FinetuneCommand.options(self.modelOptions, pretrained: pretrained, data: training.data)
    var job = FineTuneJob(strategy: strategy, spec: training.spec, model: modelOptions.spec, pretrained: pretrained)
    job.augment = augment
    job.randomBackbone = randomBackbone
    job.bnBalance = bnBalance
    job.head = head
    let model = try asUsageError { try job.makeModel() }
    let launch: Launch
    let session: TrainingSession
    do {
      launch = try distributed.launch()
      let dataset = try openDataset(training, model: modelOptions, launch: launch)
      // Two groups to balance, checked before the run directory is made.
      if let bnBalance { _ = try BatchNormRecalibration.balance(bnBalance, dataset: dataset) }
      session = try launch.session(dataset, spec: job.spec, defining: job.defining, parallel: distributed.parallel)
    } catch { throw ValidationError("\(error)") }
    if let notice = training.precision.resolved.notice { session.say(notice) }
    do {
      try job.run(model, in: session)
    } catch {
      launch.fail(error)
    }
  }

  /// The checkpoint `--from` names, read once (nil without --from); an unreadable one is a
  /// usage error naming it.
  static func pretrained(_ from: String?) throws -> PretrainedBackbone? {
    guard let from else { return nil }
    do { return try PretrainedBackbone.read(from) } catch { throw ValidationError("--from \(error)") }
  }

  /// The model options of a fine-tuning run: what the command line gave, the rest from the
  /// pretrained checkpoint, and the image size from a packed --data when nothing says it.
  static func options(_ given: ModelOptions, pretrained: PretrainedBackbone?, data: String) throws -> ModelOptions {
    do {
      let adopted = try pretrained.map { try given.adopting($0.checkpoint, source: $0.source) } ?? given
      return try adopted.adoptingImageSize(ofData: data)
    } catch let error as ValidationError { throw error } catch { throw ValidationError("--from \(error)") }
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
    let launch = try asUsageError { try distributed.launch() }
    let job = try asUsageError { try EvaluationJob(model: model, data: data, out: out, batch: batch) }
    do {
      let f1 = try job.run(on: launch.communicator)
      launch.say(String(format: "validation mean F1 %.4f (thresholds from train); scores in %@", f1, out))
    } catch {
      launch.fail(error)
    }
  }

}

/// `body`'s value, with any error it throws turned into a usage error (exit status 2, the message
/// as it is): for what the command line checks before a run starts.
func asUsageError<T>(_ body: () throws -> T) throws -> T {
  do {
    return try body()
  } catch let error as ValidationError {
    throw error
  } catch {
    throw ValidationError("\(error)")
  }
}

// Options shared by the commands that train (pretrain, finetune): data, run directory, batch,
// length, optimizer and schedule, checkpoints.
import ArgumentParser
import CelebAFormat
import Foundation
import Training

struct TrainingOptions: ParsableArguments {
  @Option(help: "Dataset: a packed directory (`fairtune pack`), or a CelebA-format folder (packed on first use into .fairtune-packed/ beside the run, and reused).")
  var data: String

  @Option(help: "The run directory. Re-running the same command on it resumes it.")
  var out: String

  @Option(help: "The global batch (split over the ranks).")
  var batch: Int = 64

  @Option(help: "Epochs over the train split.")
  var epochs: Int = 1

  @Option(help: "Stop after this many steps (counted from the start of the run).")
  var steps: Int?

  @Option(help: "Seed of initialisation, data order and augmentation.")
  var seed: UInt64 = 0

  @Option(help: "Optimizer: sgd, lars, adam or adamw (default: lars for pretrain, sgd for finetune).")
  var optimizer: OptimizerChoice?

  @Option(help: "Learning rate (for pretrain: per 256 images, scaled by batch / 256; default 0.3 for pretrain, 1 for finetune; the loss is a mean over the 40 attributes, so heads need rates of 0.3 to 10 with SGD; Adam and AdamW give the classifier head 30 times the rate).")
  var lr: Double?

  @Option(help: "Momentum (sgd, lars).")
  var momentum: Double = 0.9

  @Flag(help: "Nesterov momentum (sgd).")
  var nesterov = false

  @Option(help: "Weight decay (L2 for sgd/adam/lars, decoupled for adamw; default 1e-6 for pretrain, 0 for finetune).")
  var weightDecay: Double?

  @Option(help: "Schedule: cosine (after a linear warmup), onecycle, step or constant.")
  var schedule: ScheduleChoice = .cosine

  @Option(help: "Linear warmup epochs (cosine, step, constant).")
  var warmupEpochs: Double = 0

  @Option(help: "Write a checkpoint every N steps (default: every epoch).")
  var checkpointEvery: Int?

  @Option(help: "Checkpoints kept (the newest).")
  var keep: Int = 3

  @Option(help: "Data-loading threads (default: as many as compute threads).")
  var loaderThreads: Int?

  @Option(help: "fp32, bf16 (bfloat16 operands with fp32 sums where the CPU has bfloat16 kernels; fp32 elsewhere, said at the start) or bf16-emulated (bfloat16's numerics on any CPU, slower than fp32).")
  var precision: PrecisionRequest = .fp32

  /// Test-only: the first step's loss and summed gradients, to compare rank counts.
  @Option(help: .hidden)
  var debugGradients: String?

  func validate() throws {
    guard batch > 0 else { throw ValidationError("--batch must be positive (got \(batch)).") }
    guard epochs > 0 else { throw ValidationError("--epochs must be positive (got \(epochs)).") }
    if let steps, steps <= 0 { throw ValidationError("--steps must be positive (got \(steps)).") }
    if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number (got \(lr)).") }
    guard (0..<1).contains(momentum) else { throw ValidationError("--momentum must be in [0, 1) (got \(momentum)).") }
    if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) {
      throw ValidationError("--weight-decay cannot be negative (got \(weightDecay)).")
    }
    guard warmupEpochs >= 0, warmupEpochs <= Double(epochs) else {
      throw ValidationError("--warmup-epochs must be between 0 and --epochs (got \(warmupEpochs)).")
    }
    if let every = checkpointEvery, every <= 0 { throw ValidationError("--checkpoint-every must be positive (got \(every)).") }
    guard keep > 0 else { throw ValidationError("--keep must be at least 1 (got \(keep)).") }
    if let t = loaderThreads, t <= 0 { throw ValidationError("--loader-threads must be positive (got \(t)).") }
  }

  /// The values these options give (`TrainingSpec`'s defaults are the command's).
  var spec: TrainingSpec {
    var spec = TrainingSpec(data: data, out: out)
    spec.batch = batch
    spec.epochs = epochs
    spec.steps = steps
    spec.seed = seed
    spec.optimizer = optimizer
    spec.learningRate = lr
    spec.momentum = momentum
    spec.nesterov = nesterov
    spec.weightDecay = weightDecay
    spec.schedule = schedule
    spec.warmupEpochs = warmupEpochs
    spec.checkpointEvery = checkpointEvery
    spec.keep = keep
    spec.loaderThreads = loaderThreads
    spec.gradientDump = debugGradients
    spec.precision = precision.precision
    return spec
  }
}

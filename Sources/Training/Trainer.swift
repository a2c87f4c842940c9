// The data-parallel training loop shared by pretrain and finetune: forward, loss (BCE over the
// attributes or SimCLR's NT-Xent with global negatives), backward with overlapped gradient
// all-reduce, optimizer and schedule, metrics, progress, checkpoints and exact resume.
import Data
import Distributed
import Foundation
import Logging
import NN
import Support
import Tensors

/// One rank's share of a global batch, as NHWC floats.
public struct TrainingBatch {
  /// [count, S, S, 3]; for SimCLR, [2 * count, S, S, 3]: every image's first view, then every
  /// image's second view.
  public var images: UnsafeMutablePointer<Float>
  /// [count, 40] in {0, 1} (nil for SimCLR).
  public var labels: UnsafeMutablePointer<Float>?
  /// Images (not views) in this rank's share.
  public var count: Int
  /// Images in the whole global batch of this step: the plan's batch, or fewer on the last,
  /// partial step of an epoch (nil: the plan's batch).
  public var globalCount: Int?
  /// Dataset indices of the images, in batch order (what a feature cache is keyed by).
  public var indices: [Int]?

  public init(
    images: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Float>?, count: Int, globalCount: Int? = nil, indices: [Int]? = nil
  ) {
    self.images = images
    self.labels = labels
    self.count = count
    self.globalCount = globalCount
    self.indices = indices
  }
}

/// Where batches come from: the loader over packed shards, or a fixed batch in tests.
public protocol BatchSource: AnyObject {
  var imageSize: Int { get }
  var stepsPerEpoch: Int { get }
  /// The rank's share of global batch `step` of `epoch` (deterministic in both, so that a
  /// resumed run sees the same data).
  func batch(epoch: Int, step: Int) throws -> TrainingBatch
  /// Seconds the training thread has waited for data so far.
  var waitSeconds: Double { get }
}

public enum TrainingError: Error, CustomStringConvertible {
  case diverged(step: Int, loss: Double)

  public var description: String {
    switch self {
    case .diverged(let step, let loss):
      return "training diverged: the loss is \(loss) at step \(step); lower the learning rate"
    }
  }
}

/// The frozen strategy's head as a convex problem solved to convergence on the feature table:
/// the train images and their labels ([count, K] in {0, 1}), and the solver (its weight decay
/// is the run's).
public struct ConvergedHead {
  public let solver: LogisticRegression
  public let indices: [Int]
  public let labels: [Float]

  public init(solver: LogisticRegression, indices: [Int], labels: [Float]) {
    self.solver = solver
    self.indices = indices
    self.labels = labels
  }

  /// The head of a frozen run on `dataset`'s train split.
  public init(dataset: PackedDataset, weightDecay: Double) {
    let indices = dataset.train
    let k = dataset.attributeCount
    var labels = [Float](repeating: 0, count: indices.count * k)
    for (row, index) in indices.enumerated() {
      let values = dataset.labels(index)
      for j in 0..<k { labels[row * k + j] = Float(values[j]) }
    }
    self.init(solver: LogisticRegression(weightDecay: weightDecay), indices: indices, labels: labels)
  }
}

public enum Objective: Equatable, Sendable {
  /// Binary cross-entropy over the attributes (mean over the global batch and the outputs).
  case attributes
  /// NT-Xent over both views of the global batch, every other embedding a negative.
  case simclr(temperature: Float)
}

public struct TrainingPlan: Sendable {
  public var epochs: Int
  /// Stop after this many steps (counted from the start of training), if set.
  public var maxSteps: Int?
  public var globalBatch: Int
  public var checkpointEvery: Int
  public var keep: Int

  public init(epochs: Int, maxSteps: Int?, globalBatch: Int, checkpointEvery: Int, keep: Int) {
    self.epochs = epochs
    self.maxSteps = maxSteps
    self.globalBatch = globalBatch
    self.checkpointEvery = checkpointEvery
    self.keep = keep
  }
}

public final class Trainer {
  public let model: ResNet
  public let objective: Objective
  public let optimizer: Optimizer
  public let schedule: Schedule
  public let communicator: Communicator
  public let reducer: GradientReducer
  public let statistics: SynchronizedStatistics?
  public let source: BatchSource
  public let run: RunDirectory
  public let plan: TrainingPlan
  /// Added to every checkpoint's metadata (options, strategy, model).
  public let metadata: [String: Any]
  /// Progress lines and warnings (`Log`: progress from rank 0 only).
  public var logger = Log.logger("trainer")
  /// Called after every step, and after the last step of each epoch with that epoch's index
  /// (sweeps send heartbeats and per-epoch validation metrics from here).
  public var afterStep: (() -> Void)?
  public var afterEpoch: ((Int) throws -> Void)?
  /// Set (by `afterEpoch`, on every rank alike) to end training after the current step: the
  /// final checkpoint is written as if the plan had ended there.
  public var stopRequested = false
  /// Writes the first step's summed gradients (and its loss) here as safetensors (rank 0): how
  /// runs over different rank counts are compared.
  public var gradientDump: String? {
    get { trainingStep.gradientDump }
    set { trainingStep.gradientDump = newValue }
  }
  /// Every image's backbone features (the frozen strategy on plain images): steps run only
  /// the head.
  public var featureCache: FeatureCache? {
    get { trainingStep.featureCache }
    set { trainingStep.featureCache = newValue }
  }
  /// The step this loop runs.
  public let trainingStep: TrainingStep
  /// With a feature table: the head is solved to convergence (`ConvergedHead`) instead of being
  /// trained step by step.
  public var convergedHead: ConvergedHead?
  /// Pretraining: the representation's kNN quality, measured before the first step and at the
  /// end of every epoch (`knn_mean_f1` in metrics.jsonl, with `monitor_seconds`).
  public var monitor: RepresentationMonitor?

  public private(set) var step = 0
  public private(set) var trainingSeconds = 0.0
  private let writer = CheckpointWriter()
  private let snapshotPool = SnapshotPool()

  /// A loop running `step` (`TrainingStep.dataParallel`, or `.single` in one process).
  public init(step: TrainingStep, schedule: Schedule, source: BatchSource, run: RunDirectory, plan: TrainingPlan, metadata: [String: Any]) {
    model = step.model
    objective = step.objective
    optimizer = step.optimizer
    communicator = step.communicator
    reducer = step.reducer
    statistics = step.statistics
    self.schedule = schedule
    self.source = source
    self.run = run
    self.plan = plan
    self.metadata = metadata
    trainingStep = step
  }

  public var totalSteps: Int {
    let all = plan.epochs * source.stepsPerEpoch
    return min(all, plan.maxSteps ?? all)
  }

  // MARK: Checkpoints and resume

  /// Model, optimizer state and position: everything an exact resume needs.
  func checkpoint() -> Checkpoint { snapshot().checkpoint() }

  /// Copies of the model's buffers and the optimizer's state (plain memory copies: the only
  /// part of a checkpoint the training thread waits for) with the metadata.
  func snapshot() -> Snapshot {
    var meta = metadata
    meta["format"] = "fairtune"
    meta["model"] = model.configuration.metadata
    meta["step"] = step
    meta["epoch"] = step / max(source.stepsPerEpoch, 1)
    meta["optimizer_steps"] = optimizer.stepCount
    meta["training_seconds"] = trainingSeconds
    let sources = [model.registry.values, model.registry.state] + optimizer.state
    let store = snapshotPool.take(sizes: sources.map(\.count))
    // What training changes: the trained parameters (the others are read by the writer from
    // the model itself: nothing writes them while training runs), the running statistics and
    // the optimizer state. One copy split over the workers, into buffers the last checkpoint
    // handed back (their pages are already mapped): all a checkpoint costs the training thread.
    var ranges: [(buffer: Int, start: Int, count: Int)] = []
    for p in model.registry.parameters where p.requiresGradient {
      if let last = ranges.last, last.buffer == 0, last.start + last.count == p.offset {
        ranges[ranges.count - 1].count += p.count
      } else {
        ranges.append((0, p.offset, p.count))
      }
    }
    for t in 1..<sources.count { ranges.append((t, 0, sources[t].count)) }
    let chunk = 1 << 18
    let jobs = ranges.flatMap { r in stride(from: 0, to: r.count, by: chunk).map { (r.buffer, r.start + $0, min(chunk, r.count - $0)) } }
    func copy(_ range: Range<Int>) {
      for (t, start, count) in jobs[range] {
        store.buffers[t].baseAddress!.advanced(by: start).update(from: sources[t].data + start, count: count)
      }
    }
    // A small copy (a head and its optimizer state) is quicker than waking the workers.
    if ranges.reduce(0, { $0 + $1.count }) < 1 << 20 { copy(0..<jobs.count) } else { Parallel.forEach(jobs.count, copy) }
    return Snapshot(
      store: store, pool: snapshotPool, parameters: model.registry.parameters, buffers: model.registry.buffers,
      trained: model.registry.parameters.map(\.requiresGradient), liveValues: UnsafePointer(model.registry.values.data), metadata: meta)
  }

  /// A checkpoint's contents copied out of the live model; `checkpoint()` lays them out as named
  /// tensors (on the writer's thread), then hands the buffers back for the next checkpoint.
  struct Snapshot {
    let store: SnapshotPool.Store
    let pool: SnapshotPool
    let parameters: [Parameter]
    let buffers: [Parameter]
    /// Per parameter: copied (trained), or read from the model's own values (`liveValues`).
    let trained: [Bool]
    let liveValues: UnsafePointer<Float>
    let metadata: [String: Any]

    func checkpoint() -> Checkpoint {
      var tensors: [NamedTensor] = []
      let values = UnsafePointer(store.buffers[0].baseAddress!)
      let state = store.buffers[1]
      for (p, copied) in zip(parameters, trained) {
        tensors.append(NamedTensor(name: p.name, shape: p.shape, values: p.torchOrdered(inCopyOf: copied ? values : liveValues)))
      }
      for b in buffers { tensors.append(NamedTensor(name: b.name, shape: b.shape, values: b.torchOrdered(inCopyOf: state.baseAddress!))) }
      for (i, t) in store.buffers.dropFirst(2).enumerated() {
        tensors.append(NamedTensor(name: "optimizer.\(i)", shape: [t.count], values: Array(t)))
      }
      pool.give(store)
      return Checkpoint(metadata: metadata, tensors: tensors)
    }
  }

  /// Where a run resumes: the newest good checkpoint of `run` (rank 0 chooses, damaged ones
  /// skipped with a warning; every rank then reads the same file, so the run directory must be
  /// on a shared file system). Step 0 and nil for a new run.
  public static func resumePoint(_ run: RunDirectory, communicator: Communicator, warn: (String) -> Void) throws
    -> (step: Int, checkpoint: Checkpoint?, path: String?)
  {
    var chosen: Int64 = -1
    var found: (path: String, checkpoint: Checkpoint)?
    if communicator.rank == 0 {
      found = run.newestGoodCheckpoint(warn: warn)
      chosen = Int64((found?.checkpoint.metadata["step"] as? Int) ?? -1)
    }
    try communicator.broadcast(&chosen)
    guard chosen >= 0 else { return (0, nil, nil) }
    if communicator.rank != 0 {
      let path = run.checkpoints + "/" + RunDirectory.checkpointName(step: Int(chosen))
      found = (path, try Checkpoint.read(path))
    }
    return (Int(chosen), found?.checkpoint, found?.path)
  }

  /// Continues from the newest good checkpoint of the run, if any.
  public func resume() throws {
    let point = try Trainer.resumePoint(run, communicator: communicator) { self.logger.warning("\($0)") }
    guard let ckpt = point.checkpoint, let path = point.path else { return }
    try restore(ckpt, source: path)
    logger.info("resuming from \(path) (step \(step))")
  }

  /// Model, optimizer state and position from a checkpoint of this run.
  public func restore(_ ckpt: Checkpoint, source: String) throws {
    let tensors = Dictionary(ckpt.tensors.map { ($0.name, $0) }) { a, _ in a }
    try model.load(tensors, source: source, allowExtra: true)
    for (i, t) in optimizer.state.enumerated() {
      guard let saved = tensors["optimizer.\(i)"], saved.values.count == t.count else {
        throw ModelStateError.missing(source: source, name: "optimizer.\(i)")
      }
      saved.values.withUnsafeBufferPointer { t.data.update(from: $0.baseAddress!, count: t.count) }
    }
    step = ckpt.metadata["step"] as? Int ?? 0
    optimizer.stepCount = ckpt.metadata["optimizer_steps"] as? Int ?? step
    trainingSeconds = (ckpt.metadata["training_seconds"] as? NSNumber)?.doubleValue ?? 0
  }

  // MARK: The loop

  /// Trains to the end of the plan; returns the number of steps run now.
  @discardableResult
  public func train() throws -> Int {
    if let convergedHead, let featureCache { return try fitHead(convergedHead, cache: featureCache) }
    let metrics = communicator.rank == 0 ? try MetricsLog(path: run.metricsFile) : nil
    let total = totalSteps
    let first = step
    var lastReport = Clock.now()
    var windowImages = 0
    var windowSeconds = 0.0
    /// The monitor's figure now, and the seconds it took.
    func monitored() throws -> (value: Double, seconds: Double)? {
      guard let monitor else { return nil }
      let begin = Clock.now()
      let value = try monitor.measure(model)
      return (value, Clock.now() - begin)
    }
    var knn: Double?
    if step == 0, let (value, seconds) = try monitored() {
      knn = value
      metrics?.append(["step": 0, "epoch": 0, "knn_mean_f1": value, "monitor_seconds": seconds, "backbone": "initial"])
      logger.info("\(String(format: "kNN mean F1 of the initial backbone: %.4f (%d train images vote for %d val images; %.1f s)", value, monitor!.bank.count, monitor!.queries.count, seconds))")
    }
    while step < total && !stopRequested {
      let epoch = step / source.stepsPerEpoch
      let waitBefore = source.waitSeconds
      let start = Clock.now()
      let batch = try source.batch(epoch: epoch, step: step % source.stepsPerEpoch)
      optimizer.learningRate = schedule.learningRate(step: step)
      let (loss, correct) = try trainingStep(batch, imageSize: source.imageSize, globalBatch: plan.globalBatch)
      let images = batch.globalCount ?? plan.globalBatch
      guard loss.isFinite else { throw TrainingError.diverged(step: step + 1, loss: loss) }
      let seconds = Clock.now() - start
      trainingSeconds += seconds
      step += 1
      windowImages += images
      windowSeconds += seconds
      let imagesPerSecond = Double(images) / seconds
      var record: [String: Any] = [
        "step": step, "epoch": epoch, "loss": loss, "lr": Double(optimizer.learningRate),
        "images_per_second": imagesPerSecond, "step_seconds": seconds,
        "data_wait_seconds": source.waitSeconds - waitBefore,
        "exposed_allreduce_seconds": reducer.exposedSeconds,
      ]
      if let correct {
        // Every one of the 2 x batch views of the global batch is an anchor.
        record["contrastive_top1"] = correct
        record["contrastive_top1_accuracy"] = Double(correct) / Double(2 * images)
      }
      if step % plan.checkpointEvery == 0 && step < total {
        let begin = Clock.now()
        try saveCheckpoint()
        record["checkpoint_stall_seconds"] = Clock.now() - begin
      }
      let epochEnds = step % source.stepsPerEpoch == 0 || step == total
      if epochEnds, let (value, seconds) = try monitored() {
        record["knn_mean_f1"] = value
        record["monitor_seconds"] = seconds
        knn = value
      }
      metrics?.append(record)
      afterStep?()
      if epochEnds { try afterEpoch?(epoch) }
      let now = Clock.now()
      if communicator.rank == 0 && (now - lastReport > 10 || step == total || step == first + 1 || (epochEnds && monitor != nil)) {
        let rate = Double(windowImages) / max(windowSeconds, 1e-9)
        let eta = Double(total - step) * Double(plan.globalBatch) / max(rate, 1e-9)
        let quality = knn.map { String(format: ", kNN mean F1 %.4f", $0) } ?? ""
        logger.info("\(String(format: "epoch %d, step %d/%d, loss %.4f%@, %.1f img/s, ETA %@", epoch + 1, step, total, loss, quality, rate, Self.duration(eta)))")
        lastReport = now
        windowImages = 0
        windowSeconds = 0
      }
    }
    try writer.finish()
    if communicator.rank == 0 {
      try checkpoint().write(to: run.finalCheckpoint)
      for w in writer.written {
        metrics?.append(["checkpoint": w.path, "checkpoint_bytes": w.bytes, "checkpoint_write_seconds": w.seconds,
          "checkpoint_raw_bytes": (model.registry.values.count + model.registry.state.count + optimizer.state.reduce(0) { $0 + $1.count }) * 4])
      }
    }
    try communicator.barrier()
    return step - first
  }

  /// The frozen head solved on the feature table of the train images: rank 0 solves, every rank
  /// takes its weights. The whole plan counts as run (the final checkpoint says so), and
  /// `afterEpoch` hears of the last epoch once, with the solved head in place.
  private func fitHead(_ head: ConvergedHead, cache: FeatureCache) throws -> Int {
    guard let fc = model.fc else { preconditionFailure("a converged head needs a classifier") }
    let metrics = communicator.rank == 0 ? try MetricsLog(path: run.metricsFile) : nil
    let start = Clock.now()
    let n = head.indices.count
    let k = fc.outputFeatures
    var parameters = [Float](repeating: 0, count: fc.weight.count + k)
    var summary = ""
    if communicator.rank == 0 {
      guard let rows = cache.features(head.indices) else { preconditionFailure("the feature table lacks train images") }
      let features = Array(UnsafeBufferPointer(start: rows, count: n * cache.dimension))
      let fit = features.withUnsafeBufferPointer { x in
        head.labels.withUnsafeBufferPointer { y in
          head.solver.fit(
            features: x.baseAddress!, labels: y.baseAddress!, count: n, dimension: cache.dimension, outputs: k,
            weight: Array(UnsafeBufferPointer(start: fc.weight.value, count: fc.weight.count)),
            bias: Array(UnsafeBufferPointer(start: fc.bias!.value, count: k)))
        }
      }
      parameters = fit.weight + fit.bias
      for (iteration, loss) in fit.losses.enumerated() { metrics?.append(["step": iteration, "epoch": 0, "loss": loss, "solver": "lbfgs"]) }
      metrics?.append([
        "head_fit": "lbfgs", "iterations": fit.iterations, "converged": fit.converged, "stop": fit.stop.rawValue, "loss": fit.loss,
        "gradient_max": fit.gradientNorm, "gradient_tolerance": head.solver.gradientTolerance, "weight_decay": head.solver.weightDecay,
        "images": n,
      ])
      let verdict: String
      switch fit.stop {
      case .gradient: verdict = String(format: "converged: below %.0e", head.solver.gradientTolerance)
      case .stalled:
        verdict = fit.converged ? "converged as far as float32 can tell: no step lowers the loss" : "NOT converged: the line search stalled"
      case .iterations: verdict = "NOT converged: the iteration limit came first"
      }
      summary = String(format: "head solved on the features of %d train images: L-BFGS, %d iterations, loss %.5f, largest gradient %.1e (%@), weight decay %.2g",
        n, fit.iterations, fit.loss, fit.gradientNorm, verdict, head.solver.weightDecay)
    }
    try parameters.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
    fc.weight.value.update(from: parameters, count: fc.weight.count)
    parameters.withUnsafeBufferPointer { fc.bias!.value.update(from: $0.baseAddress! + fc.weight.count, count: k) }
    let first = step
    step = totalSteps
    trainingSeconds += Clock.now() - start
    if communicator.rank == 0 { logger.info("\(summary)") }
    try afterEpoch?(max(0, (totalSteps - 1) / source.stepsPerEpoch))
    try writer.finish()
    if communicator.rank == 0 { try checkpoint().write(to: run.finalCheckpoint) }
    try communicator.barrier()
    return step - first
  }

  private func saveCheckpoint() throws {
    try writer.check()
    guard communicator.rank == 0 else { return }
    let path = run.checkpoints + "/" + RunDirectory.checkpointName(step: step)
    let keep = plan.keep
    let run = self.run
    writer.write({ let snapshot = self.snapshot(); return { snapshot.checkpoint() } }, to: path) { run.prune(keep: keep) }
  }

  public static func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s % 3600 / 60) : String(format: "%dm%02ds", s / 60, s % 60)
  }
}

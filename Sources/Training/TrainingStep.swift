// One data-parallel optimisation step: forward, the loss (binary cross-entropy over the
// attributes, or SimCLR's NT-Xent with global negatives), backward with the gradient all-reduce
// started as buckets fill, and the optimizer. `Trainer` runs it in its loop; `fairtune bench`,
// `bench-data` and `plan` time this same step.
import Data
import Distributed
import Foundation
import NN
import Tensors

public final class TrainingStep {
  public let model: ResNet
  public let objective: Objective
  public let optimizer: Optimizer
  public let communicator: Communicator
  public let reducer: GradientReducer
  public let statistics: SynchronizedStatistics?
  /// Every image's backbone features (the frozen strategy on plain images): the step runs only
  /// the head on the batch's images' rows.
  public var featureCache: FeatureCache?
  /// Writes the next step's summed gradients (and its loss) here as safetensors (rank 0), once.
  public var gradientDump: String?
  private var scratch = Workspace()
  private var gathered = Workspace()
  private var outputGradient = Workspace()

  public init(
    model: ResNet, objective: Objective, optimizer: Optimizer, communicator: Communicator, reducer: GradientReducer,
    statistics: SynchronizedStatistics?
  ) {
    self.model = model
    self.objective = objective
    self.optimizer = optimizer
    self.communicator = communicator
    self.reducer = reducer
    self.statistics = statistics
  }

  /// The data-parallel step of `model` on `communicator`: BatchNorm's statistics summed over
  /// the ranks (when `settings` asks for it and there are several ranks) and the gradients
  /// all-reduced in buckets as backward fills them. Training runs, the scaling model's trace and
  /// `fairtune bench` build their step here (a tracing communicator records BatchNorm's sums and
  /// the gradient buckets under their own labels). The replicas must already be alike
  /// (`Replicas.synchronize`).
  ///
  /// Under the priority schedule (`settings.collectives`) BatchNorm's sums go on a communicator
  /// of their own (made once per group: every rank of it builds its step at the same point) and
  /// the gradient buckets in bounded chunks (`GradientReducer`).
  public static func dataParallel(
    _ model: ResNet, objective: Objective, optimizer: Optimizer, communicator: Communicator, settings: DataParallelSettings
  ) throws -> TrainingStep {
    let tracing = communicator as? TracingCommunicator
    func route(_ label: String) -> Communicator { tracing?.labelled(label) ?? communicator }
    var statistics: SynchronizedStatistics?
    if settings.synchronizedBatchNorm && communicator.size > 1 {
      let channel = settings.collectives == .priority && tracing == nil ? try PriorityChannels.batchNorm(of: communicator) : route("batchnorm")
      let synchronized = SynchronizedStatistics(communicator: channel)
      for bn in model.batchNorms { bn.reducer = synchronized }
      statistics = synchronized
    }
    let reducer = GradientReducer(
      communicator: route("gradient"), registry: model.registry, bucketBytes: settings.bucketBytes, schedule: settings.collectives,
      chunkBytes: settings.chunkBytes, wire: settings.wire)
    if settings.collectives == .priority, let statistics, tracing == nil {
      reducer.pacedByBatchNorm = true
      statistics.afterSum = { [weak reducer] in reducer?.afterBatchNormSum() }
    }
    return TrainingStep(
      model: model, objective: objective, optimizer: optimizer, communicator: communicator, reducer: reducer, statistics: statistics)
  }

  /// The step of a single process (no other ranks, local BatchNorm).
  public static func single(_ model: ResNet, objective: Objective, optimizer: Optimizer) -> TrainingStep {
    let communicator = LocalCommunicator()
    return TrainingStep(
      model: model, objective: objective, optimizer: optimizer, communicator: communicator,
      reducer: GradientReducer(communicator: communicator, registry: model.registry), statistics: nil)
  }

  /// One optimisation step on this rank's share of a global batch of `globalBatch` images (or
  /// the batch's own `globalCount`); returns the global mean loss (and, for SimCLR, how many of
  /// the global anchors ranked their positive first).
  public func callAsFunction(_ batch: TrainingBatch, imageSize size: Int, globalBatch: Int) throws -> (loss: Double, correct: Int?) {
    model.registry.zeroGradients()
    reducer.beginStep()
    statistics?.resetFigures()
    let rows = objective == .attributes ? batch.count : 2 * batch.count
    let images = FeatureMap(data: batch.images, batch: rows, height: size, width: size, channels: 3)
    let output: UnsafeMutablePointer<Float>
    if objective == .attributes, let indices = batch.indices, let features = featureCache?.features(indices) {
      output = model.forwardHead(features, batch: rows)
    } else {
      output = model.forward(images)
    }
    let width = model.outputDimension
    let dOutput = outputGradient.pointer(count: rows * width)
    var localLoss = 0.0
    var correct: Int?
    switch objective {
    case .attributes:
      guard let labels = batch.labels else { preconditionFailure("attribute training needs labels") }
      localLoss = Profiler.time(.loss) {
        Double(Losses.binaryCrossEntropyWithLogits(
          logits: output, targets: labels, count: rows * width, gradient: dOutput, meanOver: (batch.globalCount ?? globalBatch) * width))
      }
    case .simclr(let temperature):
      (localLoss, correct) = try contrastive(
        output, images: batch.count, globalImages: batch.globalCount ?? globalBatch, dimension: width, temperature: temperature,
        gradient: dOutput)
    }
    var failure: Error?
    model.backward(dOutput) { offset in
      do { try self.reducer.gradientsReady(from: offset) } catch { failure = failure ?? error }
    }
    if let failure { throw failure }
    try reducer.finish()
    try statistics?.check()
    var totals = [localLoss, Double(correct ?? 0)]
    try communicator.allReduceSum(&totals, count: 2)
    if let path = gradientDump, communicator.rank == 0 {
      var tensors: [(name: String, dtype: SafeTensors.DType, shape: [Int], bytes: Data)] = [("loss", .f64, [1], withUnsafeBytes(of: totals[0]) { Data($0) })]
      for p in model.registry.parameters where p.requiresGradient {
        tensors.append(("grad." + p.name, .f32, p.shape, SafeTensors.bytes(of: p.torchOrderedGradient())))
      }
      try SafeTensors.write(tensors, to: path)
      gradientDump = nil
    }
    Profiler.time(.optimizer) { model.registry.step(optimizer) }
    return (totals[0], correct == nil ? nil : Int(totals[1]))
  }

  /// NT-Xent with global negatives: every rank's embeddings are gathered, each rank takes the
  /// loss of its own anchors against all of them, and the gradient parts are summed so that
  /// each rank gets the whole gradient of its own embeddings.
  private func contrastive(
    _ embeddings: UnsafeMutablePointer<Float>, images: Int, globalImages: Int, dimension d: Int, temperature: Float,
    gradient: UnsafeMutablePointer<Float>
  ) throws -> (Double, Int) {
    let ranks = communicator.size
    // The shares of this step's global batch (the last step of an epoch may be partial).
    let shares = (0..<ranks).map { DistributedSampler.share(of: globalImages, rank: $0, ranks: ranks) }
    var starts = [0]
    for s in shares { starts.append(starts.last! + 2 * s) }
    let m = starts.last!
    let all = gathered.pointer(count: 2 * m * d)
    let parts = all + m * d
    try communicator.allGatherVariable(embeddings, count: 2 * images * d, into: all, counts: shares.map { 2 * $0 * d })
    let mine = starts[communicator.rank]..<starts[communicator.rank + 1]
    let (loss, correct) = Losses.ntXent(
      embeddings: all, rows: m, dimension: d, anchors: mine,
      positive: { i in
        var r = 0
        while starts[r + 1] <= i { r += 1 }
        let j = i - starts[r]
        return starts[r] + (j < shares[r] ? j + shares[r] : j - shares[r])
      },
      temperature: temperature, normalizer: m, gradient: parts, scratch: &scratch)
    try communicator.allReduceSum(parts, count: m * d)
    gradient.update(from: parts + mine.lowerBound * d, count: mine.count * d)
    return (loss, correct)
  }
}

/// The communicators the priority schedule gives BatchNorm's sums: one duplicate of each group's
/// communicator, made the first time a step is built on it and kept (a sweep builds a step per
/// trial on the same group; a communicator per trial would exhaust MPI's).
public enum PriorityChannels {
  nonisolated(unsafe) private static var made: [ObjectIdentifier: (base: Communicator, channel: Communicator)] = [:]
  private static let lock = NSLock()

  /// The BatchNorm channel of `communicator` (a collective the first time: every rank of the
  /// group calls it at the same point). The lock is not held across the split, whose other
  /// ranks may be threads of this process.
  public static func batchNorm(of communicator: Communicator) throws -> Communicator {
    let key = ObjectIdentifier(communicator)
    lock.lock()
    let known = made[key]
    lock.unlock()
    if let known { return known.channel }
    guard let channel = try communicator.split(color: 0, key: communicator.rank) else { return communicator }
    lock.lock()
    made[key] = (communicator, channel)
    lock.unlock()
    return channel
  }
}

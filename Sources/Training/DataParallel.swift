// Data parallelism over a communicator: the bucketed gradient all-reduce, started during
// backward as buckets fill and waited for by the optimizer (PyTorch DDP's design, over the
// registry's one contiguous gradient buffer); the adapter that makes BatchNorm synchronized; and
// the check that every rank holds the same replica.
import Distributed
import NN
import Tensors

public final class GradientReducer {
  /// A run of consecutive trainable parameters: one contiguous range of the gradient buffer.
  public struct Bucket {
    public let range: Range<Int>
  }

  public let communicator: Communicator
  public let registry: ParameterRegistry
  public let bucketBytes: Int
  public let schedule: CollectiveSchedule
  public let wire: GradientWire
  /// The priority schedule's chunk: 512 KB of fp32 values. On two hosts over a 300 Mbit/s link
  /// (ResNet-18 at half width, SimCLR, docs/scaling.md) 128 KB to 1 MB chunks ran within 5% of
  /// each other, 512 KB the fastest with either wire: smaller ones leave the link idle between
  /// the polls of backward, larger ones make the BatchNorm sums wait.
  public static let defaultChunkBytes = 512 << 10
  /// Under the priority schedule: the largest all-reduce, and how many may be in flight.
  public let chunkBytes: Int
  public let chunksInFlight: Int
  /// In the order backward completes them: from the end of the buffer to its start.
  public private(set) var buckets: [Bucket] = []
  private var pending: [PendingReduction?] = []
  private var started = 0
  /// Priority: the chunks of the started buckets not yet sent, in order, and those in flight.
  private var queued: [Range<Int>] = []
  private var nextQueued = 0
  private var inFlight: [PendingReduction] = []

  /// Figures of the last step.
  public private(set) var startedDuringBackward = 0
  public private(set) var exposedSeconds = 0.0
  public private(set) var reducedFloats = 0

  /// `bucketBytes` caps a bucket (PyTorch DDP's default is 25 MB); a parameter larger than
  /// that is a bucket of its own. Under `.priority` a bucket goes as chunks of at most
  /// `chunkBytes`, at most `chunksInFlight` at a time, so that a BatchNorm sum on its own
  /// communicator finds at most that many bytes of gradient ahead of it on the link.
  public init(
    communicator: Communicator, registry: ParameterRegistry, bucketBytes: Int = 25 << 20, schedule: CollectiveSchedule = .fifo,
    chunkBytes: Int = GradientReducer.defaultChunkBytes, chunksInFlight: Int = 2, wire: GradientWire = .fp32
  ) {
    self.wire = wire
    precondition(bucketBytes > 0 && chunkBytes > 0 && chunksInFlight > 0)
    self.communicator = communicator
    self.registry = registry
    self.bucketBytes = bucketBytes
    self.schedule = schedule
    self.chunkBytes = chunkBytes
    self.chunksInFlight = chunksInFlight
    rebuild()
  }

  /// Regroups the buckets after `requiresGradient` flags change; frozen parameters are never
  /// communicated.
  public func rebuild() {
    buckets = []
    let capacity = max(1, bucketBytes / MemoryLayout<Float>.stride)
    var current: Range<Int>?
    var stage = ""
    for p in registry.parameters.reversed() {
      guard p.requiresGradient else {
        if let c = current { buckets.append(Bucket(range: c)) }
        current = nil
        continue
      }
      let range = p.offset..<(p.offset + p.count)
      // A bucket never spans two stages (stem, layer1..4, head): a bucket is ready only when its
      // lowest parameter is, so one holding the end of a stage and the start of the next would
      // wait for the whole of the lower stage's backward. The last bucket (the stem and
      // layer1) is then small, and little is left to send when backward ends.
      let sameStage = p.stage == stage
      stage = p.stage
      if let c = current, sameStage, c.lowerBound == range.upperBound, c.count + range.count <= capacity {
        current = range.lowerBound..<c.upperBound
      } else {
        if let c = current { buckets.append(Bucket(range: c)) }
        current = range
      }
    }
    if let c = current { buckets.append(Bucket(range: c)) }
    pending = Array(repeating: nil, count: buckets.count)
  }

  public func beginStep() {
    started = 0
    startedDuringBackward = 0
    exposedSeconds = 0
    reducedFloats = 0
    for i in pending.indices { pending[i] = nil }
    queued.removeAll(keepingCapacity: true)
    nextQueued = 0
    failure = nil
    sumsSinceReady = 0
    inFlight.removeAll(keepingCapacity: true)
  }

  /// Called by backward whenever every gradient at offsets >= `offset` is final: starts the
  /// buckets that became complete and progresses those in flight (OpenMPI advances
  /// nonblocking collectives only inside MPI calls).
  public func gradientsReady(from offset: Int) throws {
    guard communicator.size > 1 else { return }
    while started < buckets.count && buckets[started].range.lowerBound >= offset {
      try start(started)
      startedDuringBackward += 1
    }
    switch schedule {
    case .fifo:
      for i in 0..<started {
        if let p = pending[i] { _ = try p.test() }
      }
    case .priority:
      // With BatchNorm's sums paced by `afterBatchNormSum`, new chunks start only after a sum:
      // the next sum comes right after this (a unit's BatchNorm follows its convolution in
      // backward), and chunks started now would be on the link ahead of it.
      // Where no sum came since the last call (BatchNorm in eval mode: frozen backbones), nothing
      // paces the chunks, and they start here.
      try pump(startingNew: !pacedByBatchNorm || sumsSinceReady == 0)
      sumsSinceReady = 0
    }
  }

  /// Priority: BatchNorm's sums call `afterBatchNormSum()` (set by `TrainingStep`), and chunks
  /// start then, to travel while the next convolution's backward computes.
  public var pacedByBatchNorm = false
  private var failure: Error?
  private var sumsSinceReady = 0

  /// Starts queued chunks after a BatchNorm sum (its interface cannot throw: an error is kept
  /// and rethrown by `finish()`).
  public func afterBatchNormSum() {
    guard schedule == .priority, failure == nil, communicator.size > 1 else { return }
    sumsSinceReady += 1
    do { try pump() } catch { failure = error }
  }

  private func start(_ index: Int) throws {
    let range = buckets[index].range
    switch schedule {
    case .fifo:
      pending[index] = try reduce(range)
    case .priority:
      // A bucket's chunks from its top down, as backward completes it.
      let chunk = max(1, chunkBytes / MemoryLayout<Float>.stride)
      var upper = range.upperBound
      while upper > range.lowerBound {
        let lower = max(range.lowerBound, upper - chunk)
        queued.append(lower..<upper)
        upper = lower
      }
    }
    reducedFloats += range.count
    started += 1
  }

  /// Starts the sum of one range of the gradient buffer, in the wire's format.
  private func reduce(_ range: Range<Int>) throws -> PendingReduction {
    let values = registry.gradients.data + range.lowerBound
    switch wire {
    case .fp32: return try communicator.startAllReduceSum(values, count: range.count)
    case .bf16: return try communicator.startAllReduceSumBFloat16(values, count: range.count)
    }
  }

  /// Priority: drops the completed chunks and starts queued ones up to the in-flight limit.
  private func pump(startingNew: Bool = true) throws {
    var index = 0
    while index < inFlight.count {
      if try inFlight[index].test() { inFlight.remove(at: index) } else { index += 1 }
    }
    while startingNew && inFlight.count < chunksInFlight && nextQueued < queued.count {
      let range = queued[nextQueued]
      nextQueued += 1
      inFlight.append(try reduce(range))
    }
  }

  /// Starts what backward did not reach and waits for everything: afterwards every rank holds
  /// the summed gradients.
  public func finish() throws {
    guard communicator.size > 1 else { return }
    let begin = Clock.now()
    while started < buckets.count { try start(started) }
    switch schedule {
    case .fifo:
      for p in pending { try p?.wait() }
    case .priority:
      if let failure { throw failure }
      try pump()
      while !inFlight.isEmpty {
        try inFlight.removeFirst().wait()
        try pump()
      }
    }
    exposedSeconds = Clock.now() - begin
  }
}

/// Makes BatchNorm synchronized: per-channel sums are added over the group's ranks.
public final class SynchronizedStatistics: StatisticsReducer {
  public let communicator: Communicator
  public private(set) var calls = 0
  public private(set) var seconds = 0.0
  /// The first communication error, rethrown by `check()` (BatchNorm's interface cannot throw).
  private var failure: Error?

  public init(communicator: Communicator) {
    self.communicator = communicator
  }

  /// Called after every sum (the priority schedule starts gradient chunks then).
  public var afterSum: (() -> Void)?

  public func sumAcrossReplicas(_ values: UnsafeMutablePointer<Double>, count: Int) {
    guard failure == nil else { return }
    let begin = Clock.now()
    do {
      try communicator.allReduceSum(values, count: count)
    } catch {
      failure = error
    }
    calls += 1
    seconds += Clock.now() - begin
    afterSum?()
  }

  public func resetFigures() {
    calls = 0
    seconds = 0
  }

  public func check() throws {
    if let failure { throw failure }
  }
}

public enum Replicas {
  /// Makes every rank's parameters and running statistics rank 0's, then checks a digest of
  /// each replica against rank 0's. `perturbRank` (tests only) alters one rank's replica after
  /// the broadcast, to show that the check catches it.
  public static func synchronize(_ registry: ParameterRegistry, communicator: Communicator, perturbRank: Int? = nil) throws {
    for tensor in [registry.values, registry.state] {
      try communicator.broadcast(UnsafeMutableRawBufferPointer(start: tensor.data, count: tensor.count * 4), root: 0)
    }
    if perturbRank == communicator.rank, registry.values.count > 0 { registry.values.data[0] += 1e-3 }
    let mine = digest(UnsafeRawBufferPointer(start: registry.values.data, count: registry.values.count * 4),
      seed: digest(UnsafeRawBufferPointer(start: registry.state.data, count: registry.state.count * 4)))
    let all = try communicator.allGather(mine)
    let differing = all.indices.filter { all[$0] != all[0] }
    guard differing.isEmpty else {
      throw CommunicatorError.mismatch(
        "replica check failed: rank(s) \(differing.map(String.init).joined(separator: ", ")) hold different weights than rank 0 after the broadcast")
    }
  }

  /// Stops with an error if the ranks were not started with the same configuration.
  public static func checkConfiguration(_ description: String, communicator: Communicator) throws {
    let all = try communicator.allGather(digest(description))
    let differing = all.indices.filter { all[$0] != all[0] }
    guard differing.isEmpty else {
      throw CommunicatorError.mismatch(
        "rank(s) \(differing.map(String.init).joined(separator: ", ")) were started with different options than rank 0: every rank must run the same command")
    }
  }
}

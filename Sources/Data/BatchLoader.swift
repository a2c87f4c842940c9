// BatchLoader: batches of packed images, transformed on background threads and prefetched
// ahead of the training step, with the time the step spent waiting for them.
import CelebAFormat
import Foundation
import Support
import Tensors

/// One batch: NHWC Float32 images, normalised; the second SimCLR view when there is one;
/// labels in {0, 1}; and which dataset images these are.
public struct Batch: @unchecked Sendable {
  public let step: Int
  /// [N, S, S, 3].
  public let images: Tensor
  /// [N, S, S, 3], for the SimCLR transform.
  public let secondView: Tensor?
  /// [N, attributes].
  public let labels: Tensor
  /// Dataset image indices, in batch order.
  public let indices: [Int]
}

/// Per-channel normalisation after scaling pixels to [0, 1] (torchvision's ToTensor then
/// Normalize). ImageNet's mean and standard deviation are the default: they are what
/// torchvision models and most SimCLR code use, so weights move between fairtune and PyTorch
/// with the same preprocessing; CelebA's own statistics are close enough not to matter.
public struct Normalisation: Sendable {
  public var mean: SIMD3<Float>
  public var standardDeviation: SIMD3<Float>

  public init(mean: SIMD3<Float>, standardDeviation: SIMD3<Float>) {
    self.mean = mean
    self.standardDeviation = standardDeviation
  }

  public static let imageNet = Normalisation(
    mean: SIMD3(0.485, 0.456, 0.406), standardDeviation: SIMD3(0.229, 0.224, 0.225))

  /// Normalises `pixels` RGB values in [0, 1] in place.
  @inline(__always)
  public func apply(_ image: UnsafeMutablePointer<Float>, pixels: Int) {
    let scale = 1 / standardDeviation
    let shift = -mean * scale
    for p in 0..<pixels {
      let q = image + p * 3
      q[0] = q[0] * scale.x + shift.x
      q[1] = q[1] * scale.y + shift.y
      q[2] = q[2] * scale.z + shift.z
    }
  }
}

/// The images of each step: `indices(step)` for steps 0..<steps. `epochs` walks a distributed
/// sampler over a split, epoch after epoch.
public struct BatchSchedule: Sendable {
  public let steps: Int
  public let indices: @Sendable (Int) -> [Int]

  public init(steps: Int, indices: @escaping @Sendable (Int) -> [Int]) {
    self.steps = steps
    self.indices = indices
  }

  /// This rank's share of each global batch of `sampler` over `images` (dataset indices of a
  /// split), for `epochs` epochs starting at `firstEpoch` (without each epoch's last, smaller
  /// batch when the sampler drops it). Each epoch's permutation is computed once, whichever
  /// thread asks first.
  public static func epochs(_ sampler: DistributedSampler, images: [Int], epochs: Int, firstEpoch: Int = 0) -> BatchSchedule {
    precondition(sampler.datasetSize == images.count, "the sampler must cover the split's images")
    let perEpoch = sampler.stepsPerEpoch
    let cache = PermutationCache(sampler)
    return BatchSchedule(steps: perEpoch * epochs) { step in
      let permutation = cache.permutation(epoch: firstEpoch + step / perEpoch)
      return sampler.indices(step: step % perEpoch, permutation: permutation).map { images[$0] }
    }
  }
}

private final class PermutationCache: @unchecked Sendable {
  private let sampler: DistributedSampler
  private let lock = NSLock()
  private var cached: [Int: [Int]] = [:]

  init(_ sampler: DistributedSampler) { self.sampler = sampler }

  func permutation(epoch: Int) -> [Int] {
    lock.lock()
    defer { lock.unlock() }
    if let found = cached[epoch] { return found }
    let permutation = sampler.permutation(epoch: epoch)
    // Workers run at most a few steps ahead: an epoch two back is never asked for again.
    cached = cached.filter { $0.key >= epoch - 1 }
    cached[epoch] = permutation
    return permutation
  }
}

/// Builds batches on `threads` background threads, up to `prefetch` batches ahead of the
/// consumer, and hands them out in step order from `firstStep` (a resumed run starts where it
/// stopped). Dataset image `i` in step `k` (view `v`) draws its augmentation from a generator
/// seeded by (seed, k, i, v): batches are the same whatever the thread count, wherever the run
/// resumed, and however the global batch is split over ranks. Dropping the loader stops its
/// threads.
public final class BatchLoader {
  private let pipeline: Pipeline

  public init(
    dataset: PackedDataset, schedule: BatchSchedule, transform: Transform, threads: Int, prefetch: Int? = nil,
    seed: UInt64, normalisation: Normalisation = .imageNet, firstStep: Int = 0
  ) {
    precondition(threads > 0, "the loader needs at least one thread")
    pipeline = Pipeline(
      dataset: dataset, schedule: schedule, transform: transform, prefetch: max(prefetch ?? 2 * threads, threads),
      seed: seed, normalisation: normalisation, threads: threads, firstStep: firstStep)
    Pipeline.live.withLock { Pipeline.liveCount += threads }
    for _ in 0..<threads {
      let thread = Thread { [pipeline] in pipeline.work() }
      thread.stackSize = 1 << 20
      thread.start()
    }
  }

  deinit { pipeline.stop() }

  /// Worker threads of all loaders that have not yet returned: a dropped loader's are gone by
  /// the time the drop returns.
  public static var liveWorkers: Int { Pipeline.live.withLock { Pipeline.liveCount } }

  /// The next batch in step order, or nil after the last step.
  public func next() -> Batch? { pipeline.next() }

  /// Seconds `next()` spent blocked waiting for a batch so far.
  public var waitSeconds: Double { pipeline.lock { pipeline.waitSeconds } }

  /// Batches handed out so far.
  public var batchesServed: Int { pipeline.lock { pipeline.consumed } }

  public var steps: Int { pipeline.schedule.steps }
}

/// The loader's shared state: the worker threads hold it, so it outlives the loader until
/// they have stopped.
final class Pipeline: @unchecked Sendable {
  let dataset: PackedDataset
  let schedule: BatchSchedule
  let transform: Transform
  let normalisation: Normalisation
  let seed: UInt64
  let prefetch: Int

  /// Workers started and not yet returned, over all pipelines (`BatchLoader.liveWorkers`).
  static let live = NSLock()
  nonisolated(unsafe) static var liveCount = 0

  private let condition = NSCondition()
  private var claimed = 0
  fileprivate(set) var consumed = 0
  private var ready: [Int: Batch] = [:]
  private var stopping = false
  private var running: Int
  fileprivate(set) var waitSeconds = 0.0

  init(
    dataset: PackedDataset, schedule: BatchSchedule, transform: Transform, prefetch: Int, seed: UInt64,
    normalisation: Normalisation, threads: Int, firstStep: Int
  ) {
    claimed = firstStep
    consumed = firstStep
    self.dataset = dataset
    self.schedule = schedule
    self.transform = transform
    self.prefetch = prefetch
    self.seed = seed
    self.normalisation = normalisation
    running = threads
  }

  func lock<T>(_ body: () -> T) -> T {
    condition.lock()
    defer { condition.unlock() }
    return body()
  }

  func stop() {
    condition.lock()
    stopping = true
    condition.broadcast()
    while running > 0 { condition.wait() }
    condition.unlock()
  }

  func next() -> Batch? {
    condition.lock()
    defer { condition.unlock() }
    guard consumed < schedule.steps else { return nil }
    if ready[consumed] == nil {
      let start = Clock.now()
      while ready[consumed] == nil { condition.wait() }
      waitSeconds += Clock.now() - start
    }
    let batch = ready.removeValue(forKey: consumed)!
    consumed += 1
    condition.broadcast()
    return batch
  }

  func work() {
    let scratch = AugmentScratch()
    while true {
      condition.lock()
      while !stopping && (claimed >= schedule.steps || claimed >= consumed + prefetch) { condition.wait() }
      if stopping {
        Self.live.withLock { Self.liveCount -= 1 }
        running -= 1
        condition.broadcast()
        condition.unlock()
        return
      }
      let step = claimed
      claimed += 1
      condition.unlock()
      let batch = build(step: step, scratch: scratch)
      condition.lock()
      ready[step] = batch
      condition.broadcast()
      condition.unlock()
    }
  }

  /// Step `step`'s batch; also what a test compares with direct decoding.
  func build(step: Int, scratch: AugmentScratch) -> Batch {
    let indices = schedule.indices(step)
    let n = indices.count
    let size = dataset.imageSize
    let pixels = size * size
    let attributes = dataset.attributeCount
    let views = (0..<transform.views).map { _ in Tensor(shape: [n, size, size, 3]) }
    let labels = Tensor(shape: [n, attributes])
    let stepSeed = seed ^ (UInt64(step) &* 0xD6E8_FEB8_6659_FD93)
    for (position, image) in indices.enumerated() {
      for (v, view) in views.enumerated() {
        var rng = SplitMix64(seed: rowSeed(stepSeed, image * 2 + v))
        let out = view.data + position * pixels * 3
        transform.apply(source: dataset.pixels(image), size: size, output: out, rng: &rng, scratch: scratch)
        normalisation.apply(out, pixels: pixels)
      }
      let source = dataset.labels(image)
      for a in 0..<attributes { labels.data[position * attributes + a] = Float(source[a]) }
    }
    return Batch(
      step: step, images: views[0], secondView: views.count > 1 ? views[1] : nil, labels: labels, indices: indices)
  }
}

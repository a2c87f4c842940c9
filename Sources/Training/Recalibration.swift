// bn-recal's pass: BatchNorm's running statistics recomputed in one forward pass over the
// fine-tuning train images, as AdaBN and "precise BN" do, but exactly: every layer's input sums
// (Σx, Σx², in Double) are added up over all the images instead of blended into an exponential
// moving average, all-reduced over the ranks with their counts, and the population mean and
// variance replace the running statistics. With a balancing attribute the sums are kept apart for
// the images where it is true and where it is false, and the statistics are the two groups'
// equal-weight mixture. The pass writes its progress into the run directory and resumes from it.
import CelebAFormat
import Data
import Distributed
import Foundation
import NN
import Support
import Tensors

/// What `--bn-balance` names wrong: an attribute the data does not have, or one with a single value.
public struct BalanceError: Error, CustomStringConvertible, Sendable {
  public let description: String
}

/// The recalibration of one model: settings, the pass, and its result.
public struct BatchNormRecalibration {
  /// Images per forward (the global batch, split over the ranks as training splits it).
  public var batch: Int
  /// Seeds the order of the images, and so which images share a batch.
  public var seed: UInt64
  /// The attribute whose two values weigh equally (its index among the dataset's labels and its
  /// name); nil: all images pooled.
  public var balance: (index: Int, name: String)?
  /// Batches between two saves of the partial sums (nil: four saves over the pass).
  public var checkpointEvery: Int?
  /// Stops after this many batches of the pass (with its progress saved): a test's interruption.
  public var stopAfter: Int?
  /// BatchNorm synchronized across the ranks during the pass (as training has it).
  public var synchronized = true

  public init(batch: Int, seed: UInt64, balance: (index: Int, name: String)? = nil) {
    self.batch = batch
    self.seed = seed
    self.balance = balance
  }

  /// What the pass did: images, seconds (the pass itself, a resumed pass's earlier part
  /// included), and whether it was read back from an earlier run.
  public struct Result: Sendable {
    public let images: Int
    public let seconds: Double
    public let reused: Bool
  }

  /// The attribute named `name` (any case) among the dataset's 40, with both values present in
  /// the train split; an error says what to use instead.
  public static func balance(_ name: String, dataset: PackedDataset) throws -> (index: Int, name: String) {
    guard dataset.attributeCount == CelebA.attributeCount,
      let index = CelebA.attributeNames.firstIndex(where: { $0.lowercased() == name.lowercased() })
    else {
      throw BalanceError(description: "--bn-balance \(name): not one of the 40 CelebA attributes (for example Male, Young, Eyeglasses).")
    }
    let positives = dataset.train.reduce(0) { $0 + (dataset.labels($1)[index] != 0 ? 1 : 0) }
    guard positives > 0 && positives < dataset.train.count else {
      throw BalanceError(description: "--bn-balance \(CelebA.attributeNames[index]): \(positives == 0 ? "no" : "every") train image has it, so there are not two groups to balance; choose another attribute.")
    }
    return (index, CelebA.attributeNames[index])
  }

  /// The pass's batches as ranges of the shuffled train images: full batches, the last partial one
  /// folded into the one before it when it has fewer than half a batch (or than one image a rank),
  /// so that every image is counted and every rank has an image in every batch. The batches do not
  /// depend on the rank count when the batch holds at least two images a rank.
  public static func batches(images: Int, batch: Int, ranks: Int) -> [Range<Int>] {
    var ranges = stride(from: 0, to: images, by: batch).map { $0..<min($0 + batch, images) }
    if ranges.count > 1, let last = ranges.last, last.count < batch, last.count < max(ranks, (batch + 1) / 2) {
      ranges.removeLast()
      ranges[ranges.count - 1] = ranges[ranges.count - 1].lowerBound..<images
    }
    return ranges
  }

  /// The file of a finished pass, and of one in progress.
  static let finishedFile = "recalibration.json"
  static let partialFile = "recalibration-partial.json"

  /// Recalibrates `model`'s BatchNorms on the train images of `dataset`, resuming from `directory`
  /// (nil: nothing saved). Returns nil if `stopAfter` stopped the pass.
  public func run(
    _ model: ResNet, dataset: PackedDataset, communicator: Communicator, threads: Int, directory: String?,
    say: (String) -> Void = { _ in }
  ) throws -> Result? {
    let layers = model.batchNorms
    let names = layers.map { String($0.runningMean.name.dropLast(".running_mean".count)) }
    let start = Clock.now()
    // A finished pass: rank 0 reads the statistics it wrote, and every rank takes them.
    var finished = directory.flatMap { try? Finished.read($0 + "/" + Self.finishedFile) }.flatMap { $0.matches(self, layers: layers, names: names) ? $0 : nil }
    var found: Int32 = communicator.rank == 0 && finished != nil ? 1 : 0
    try communicator.broadcast(&found)
    if found == 1 {
      var flat = finished?.flat ?? [Float](repeating: 0, count: layers.reduce(0) { $0 + 2 * $1.channels })
      try flat.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
      Finished.apply(flat, to: layers)
      var seconds = finished?.seconds ?? 0
      try communicator.broadcast(&seconds)
      say(String(format: "bn-recal: BatchNorm statistics of an earlier pass read from %@", Self.finishedFile))
      return Result(images: dataset.train.count, seconds: seconds, reused: true)
    }
    finished = nil

    let ranks = communicator.size
    let order = DistributedSampler(datasetSize: dataset.train.count, globalBatch: batch, rank: 0, ranks: 1, seed: seed)
      .permutation(epoch: 0).map { dataset.train[$0] }
    let plan = Self.batches(images: order.count, batch: batch, ranks: ranks)
    let groups = BatchGroups()
    let sums = layers.map { PopulationSums(channels: $0.channels, groups: balance == nil ? nil : groups, groupCount: balance == nil ? 1 : 2) }

    // Resume: rank 0 holds the saved sums of every rank, the others start from zero.
    var first = 0
    var earlierSeconds = 0.0
    if communicator.rank == 0, let directory, let partial = try? Partial.read(directory + "/" + Self.partialFile),
      partial.matches(self, names: names, batches: plan.count, sums: sums) {
      first = partial.nextBatch
      earlierSeconds = partial.seconds
      for (s, values) in zip(sums, partial.sums) { s.values = values }
    }
    try communicator.broadcast(&first)
    try communicator.broadcast(&earlierSeconds)
    if first > 0 { say("bn-recal: resuming the pass at batch \(first + 1) of \(plan.count)") }

    let saved = layers.map { ($0.training, $0.reducer) }
    let synchronizer = synchronized && ranks > 1 ? SynchronizedStatistics(communicator: communicator) : nil
    for (bn, s) in zip(layers, sums) {
      bn.training = true
      bn.population = s
      if let synchronizer { bn.reducer = synchronizer }
    }
    defer {
      for (bn, (training, reducer)) in zip(layers, saved) {
        bn.training = training
        bn.reducer = reducer
        bn.population = nil
      }
    }

    let rank = communicator.rank
    let resumed = first
    let mine: @Sendable (Int) -> [Int] = { step in
      let range = plan[resumed + step]
      let offset = DistributedSampler.offset(of: range.count, rank: rank, ranks: ranks)
      let share = DistributedSampler.share(of: range.count, rank: rank, ranks: ranks)
      return Array(order[(range.lowerBound + offset)..<(range.lowerBound + offset + share)])
    }
    let loader = BatchLoader(
      dataset: dataset, schedule: BatchSchedule(steps: plan.count - first, indices: mine), transform: .none, threads: threads, seed: 0)
    let every = max(1, checkpointEvery ?? (plan.count + 3) / 4)

    /// Every rank's sums added up on every rank; rank 0 keeps them, the others restart from zero
    /// (so that the next sum over the ranks counts each image once).
    func reduce(keepEverywhere: Bool) throws {
      var flat = sums.flatMap(\.values)
      try flat.withUnsafeMutableBufferPointer { try communicator.allReduceSum($0.baseAddress!, count: $0.count) }
      var offset = 0
      for s in sums {
        let n = s.values.count
        s.values = rank == 0 || keepEverywhere ? Array(flat[offset..<(offset + n)]) : [Double](repeating: 0, count: n)
        offset += n
      }
    }

    var step = first
    var lastReport = Clock.now()
    while let b = loader.next() {
      let n = b.indices.count
      if let balance { groups.ofImage = b.indices.map { dataset.labels($0)[balance.index] != 0 ? 1 : 0 } }
      _ = model.forwardFeatures(FeatureMap(data: b.images.data, batch: n, height: dataset.imageSize, width: dataset.imageSize, channels: 3))
      try synchronizer?.check()
      step += 1
      if Clock.now() - lastReport > 10 {
        say("bn-recal: batch \(step) of \(plan.count)")
        lastReport = Clock.now()
      }
      let stopping = stopAfter.map { step - first >= $0 } ?? false
      if step < plan.count && (step % every == 0 || stopping) {
        try reduce(keepEverywhere: false)
        if rank == 0, let directory {
          let partial = Partial(
            settings: Settings(self, names: names), nextBatch: step, batches: plan.count, seconds: earlierSeconds + Clock.now() - start,
            sums: sums.map(\.values))
          try AtomicFile.write(try JSONEncoder().encode(partial), to: directory + "/" + Self.partialFile)
        }
        if stopping { return nil }
      }
    }
    try reduce(keepEverywhere: true)
    for (bn, s) in zip(layers, sums) {
      guard let (mean, variance) = s.statistics(balanced: balance != nil) else {
        throw BalanceError(description: "bn-recal: a BatchNorm saw no image of a group")
      }
      for ch in 0..<bn.channels {
        bn.runningMean.value[ch] = Float(mean[ch])
        bn.runningVariance.value[ch] = Float(variance[ch])
      }
    }
    let seconds = earlierSeconds + Clock.now() - start
    if rank == 0, let directory {
      let record = Finished(settings: Settings(self, names: names), images: order.count, seconds: seconds, layers: layers, names: names)
      try AtomicFile.write(try JSONEncoder().encode(record), to: directory + "/" + Self.finishedFile)
      try? FileManager.default.removeItem(atPath: directory + "/" + Self.partialFile)
    }
    try communicator.barrier()
    return Result(images: order.count, seconds: seconds, reused: false)
  }

  /// What a saved pass must agree on to be resumed or reused.
  struct Settings: Codable, Equatable {
    var batch: Int
    var seed: UInt64
    var balance: String?
    var layers: [String]

    init(_ recalibration: BatchNormRecalibration, names: [String]) {
      batch = recalibration.batch
      seed = recalibration.seed
      balance = recalibration.balance?.name
      layers = names
    }
  }

  /// A pass in progress: the sums of its first `nextBatch` batches over all ranks.
  struct Partial: Codable {
    var settings: Settings
    var nextBatch: Int
    var batches: Int
    var seconds: Double
    var sums: [[Double]]

    static func read(_ path: String) throws -> Partial {
      try JSONDecoder().decode(Partial.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func matches(_ r: BatchNormRecalibration, names: [String], batches: Int, sums: [PopulationSums]) -> Bool {
      settings == Settings(r, names: names) && self.batches == batches && nextBatch > 0 && nextBatch < batches
        && self.sums.map(\.count) == sums.map(\.values.count)
    }
  }

  /// A finished pass: the statistics it set (the stored variance is the biased one, see
  /// docs/strategies.md), per layer.
  struct Finished: Codable {
    struct Layer: Codable {
      var name: String
      var mean: [Float]
      var variance: [Float]
    }

    var settings: Settings
    var images: Int
    var seconds: Double
    var layers: [Layer]

    init(settings: Settings, images: Int, seconds: Double, layers: [BatchNorm2d], names: [String]) {
      self.settings = settings
      self.images = images
      self.seconds = seconds
      self.layers = zip(layers, names).map { bn, name in
        Layer(
          name: name, mean: Array(UnsafeBufferPointer(start: bn.runningMean.value, count: bn.channels)),
          variance: Array(UnsafeBufferPointer(start: bn.runningVariance.value, count: bn.channels)))
      }
    }

    static func read(_ path: String) throws -> Finished {
      try JSONDecoder().decode(Finished.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func matches(_ r: BatchNormRecalibration, layers bns: [BatchNorm2d], names: [String]) -> Bool {
      settings == Settings(r, names: names) && layers.count == bns.count
        && zip(layers, bns).allSatisfy { $0.mean.count == $1.channels && $0.variance.count == $1.channels }
    }

    /// Means then variances of every layer, in layer order (as `statistics(of:)`).
    var flat: [Float] { layers.flatMap { $0.mean + $0.variance } }

    /// Means then variances of every layer's running statistics, in layer order.
    static func statistics(of bns: [BatchNorm2d]) -> [Float] {
      bns.flatMap { bn in
        Array(UnsafeBufferPointer(start: bn.runningMean.value, count: bn.channels))
          + Array(UnsafeBufferPointer(start: bn.runningVariance.value, count: bn.channels))
      }
    }

    static func apply(_ flat: [Float], to bns: [BatchNorm2d]) {
      var offset = 0
      for bn in bns {
        for ch in 0..<bn.channels {
          bn.runningMean.value[ch] = flat[offset + ch]
          bn.runningVariance.value[ch] = flat[offset + bn.channels + ch]
        }
        offset += 2 * bn.channels
      }
    }
  }
}

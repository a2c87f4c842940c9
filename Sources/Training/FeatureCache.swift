// Backbone features of every image, for the frozen strategy on plain images. There the
// backbone's weights and running statistics never change and BatchNorm normalises with the
// running statistics, so an image's pooled features are the same at every epoch and in every
// evaluation: they are computed once, before training (the images split over the ranks, every
// rank then holding all of them), and training and evaluation run only the head.
// Not with --augment (every epoch sees other crops) and not for bn-stats (BatchNorm uses each
// batch's own statistics, so an image's features depend on its batch).
import Data
import Distributed
import Foundation
import NN
import Tensors

public final class FeatureCache {
  /// Width of a feature row (the backbone's pooled features).
  public let dimension: Int
  /// Images passed through the backbone on this rank to fill the table, and the seconds it took.
  public private(set) var backboneImages = 0
  public private(set) var fillSeconds = 0.0
  /// Image rows served to training and evaluation.
  public private(set) var served = 0

  private var rows: [Int: Int] = [:]
  private var table: [Float] = []
  private var gathered = Workspace()
  private var chunkImages = Workspace()

  /// Images per backbone pass while filling. Fixed, with the last pass of a rank padded to it:
  /// the arithmetic (and so the rounding) of an image's features then depends only on the
  /// image, not on the number of ranks or on where a resumed run started.
  public static let chunk = 32
  /// Tables larger than this (per rank) are not made; training then runs the backbone.
  public static let defaultBytes = 4 << 30

  public init(dimension: Int) {
    self.dimension = dimension
  }

  /// The table a fine-tuning run uses: frozen without augmentation, and if every image's
  /// features fit in `bytes`; else nil (with the reason for a table that would not fit).
  public static func forFinetuning(
    _ model: ResNet, strategy: Strategy, augmented: Bool, images: Int, bytes: Int = FeatureCache.defaultBytes
  ) -> (cache: FeatureCache?, note: String?) {
    guard strategy == .frozen, !augmented else { return (nil, nil) }
    let needed = images * model.featureDimension * MemoryLayout<Float>.size
    guard needed <= bytes else {
      return (nil, String(format: "the features of %d images would take %.1f GiB per rank (over %.1f): the backbone runs every step",
        images, Double(needed) / Double(1 << 30), Double(bytes) / Double(1 << 30)))
    }
    return (FeatureCache(dimension: model.featureDimension), nil)
  }

  /// Images in the table.
  public var count: Int { rows.count }

  /// Fills the table with the features of every image of `dataset` (train, val and test), the
  /// backbone in eval mode; the images are split over the ranks of `communicator`, in passes
  /// of `chunk`, and every rank ends with all of them.
  public func fill(_ model: ResNet, dataset: PackedDataset, communicator: Communicator, threads: Int) throws {
    let start = Clock.now()
    let all = dataset.train + dataset.validation + dataset.test
    let d = dimension
    let ranks = communicator.size
    let shares = (0..<ranks).map { DistributedSampler.share(of: all.count, rank: $0, ranks: ranks) }
    let offset = DistributedSampler.offset(of: all.count, rank: communicator.rank, ranks: ranks)
    let mine = Array(all[offset..<(offset + shares[communicator.rank])])
    let chunk = Self.chunk
    let passes = (mine.count + chunk - 1) / chunk
    let loader = BatchLoader(
      dataset: dataset, schedule: BatchSchedule(steps: passes) { pass in Array(mine[(pass * chunk)..<min(mine.count, (pass + 1) * chunk)]) },
      transform: .none, threads: threads, seed: 0)
    let training = model.batchNorms.map(\.training)
    model.setBatchNormTraining(false)
    defer { for (bn, mode) in zip(model.batchNorms, training) { bn.training = mode } }
    let size = dataset.imageSize
    let pixels = size * size * 3
    var local = [Float](repeating: 0, count: mine.count * d)
    let input = chunkImages.pointer(count: chunk * pixels)
    var row = 0
    while let b = loader.next() {
      let n = b.indices.count
      input.update(from: b.images.data, count: n * pixels)
      for k in n..<chunk { (input + k * pixels).update(from: b.images.data + (n - 1) * pixels, count: pixels) }
      let features = model.forwardFeatures(FeatureMap(data: input, batch: chunk, height: size, width: size, channels: 3))
      local.withUnsafeMutableBufferPointer { ($0.baseAddress! + row * d).update(from: features.data, count: n * d) }
      row += n
    }
    backboneImages += passes * chunk
    var everything = [Float](repeating: 0, count: all.count * d)
    try local.withUnsafeBufferPointer { send in
      try everything.withUnsafeMutableBufferPointer {
        try communicator.allGatherVariable(send.baseAddress!, count: send.count, into: $0.baseAddress!, counts: shares.map { $0 * d })
      }
    }
    table = everything
    rows = Dictionary(all.enumerated().map { ($0.element, $0.offset) }) { first, _ in first }
    fillSeconds += Clock.now() - start
  }

  /// The features [indices.count, dimension] of the images with dataset indices `indices`,
  /// valid until the next call; nil if one of them is not in the table.
  public func features(_ indices: [Int]) -> UnsafeMutablePointer<Float>? {
    let d = dimension
    var found: [Int] = []
    found.reserveCapacity(indices.count)
    for index in indices {
      guard let row = rows[index] else { return nil }
      found.append(row)
    }
    let out = gathered.pointer(count: max(1, indices.count) * d)
    table.withUnsafeBufferPointer { kept in
      for (position, row) in found.enumerated() { (out + position * d).update(from: kept.baseAddress! + row * d, count: d) }
    }
    served += indices.count
    return out
  }
}

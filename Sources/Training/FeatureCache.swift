// Backbone features of every image, for the frozen strategy on plain images. There the
// backbone's weights and running statistics never change and BatchNorm normalises with the
// running statistics, so an image's pooled features are the same at every epoch and in every
// evaluation: they are computed once, before training (the images split over the ranks, every
// rank then holding all of them), and training and evaluation run only the head.
// Not with --augment (every epoch sees other crops) and not for bn-stats (BatchNorm uses each
// batch's own statistics, so an image's features depend on its batch).
import Data
import Distributed
import Experiment
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

  /// Images per backbone pass while filling. Fixed, with the last pass of a rank padded to it,
  /// so that a resumed run computes every image as the first run did. Between rank counts an
  /// image may sit at another position of its pass, which on some CPUs changes its features'
  /// last bits (OpenBLAS sums rows at the edge of its register blocks in another order).
  public static let chunk = 32
  /// Tables larger than this (per rank) are not made; training then runs the backbone.
  public static let defaultBytes = 4 << 30

  public init(dimension: Int) {
    self.dimension = dimension
  }

  /// The table a fine-tuning run uses: frozen or bn-recal (after its pass) without augmentation, and if every image's
  /// features fit in `bytes`; else nil (with the reason for a table that would not fit).
  public static func forFinetuning(
    _ model: ResNet, strategy: Strategy, augmented: Bool, images: Int, bytes: Int = FeatureCache.defaultBytes
  ) -> (cache: FeatureCache?, note: String?) {
    guard strategy.hasFixedBackbone, !augmented else { return (nil, nil) }
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
    let chunk = Self.chunk
    let pixels = dataset.imageSize * dataset.imageSize * 3
    let input = chunkImages.pointer(count: chunk * pixels)
    table = try Evaluation.rows(
      model, dataset: dataset, indices: all, batch: chunk, width: dimension, communicator: communicator, threads: threads
    ) { _, images in
      // The last pass of a rank is padded with copies of its last image.
      input.update(from: images.data, count: images.batch * pixels)
      for k in images.batch..<chunk { (input + k * pixels).update(from: images.data + (images.batch - 1) * pixels, count: pixels) }
      backboneImages += chunk
      return UnsafePointer(model.forwardFeatures(FeatureMap(data: input, batch: chunk, height: images.height, width: images.width, channels: 3)).data)
    }
    rows = Dictionary(all.enumerated().map { ($0.element, $0.offset) }) { first, _ in first }
    fillSeconds += Clock.now() - start
  }

  /// The features [indices.count, dimension] of the images with dataset indices `indices`,
  /// valid until the next call; nil if one of them is not in the table.
  public func features(_ indices: [Int]) -> UnsafeMutablePointer<Float>? {
    let d = dimension
    let out = gathered.pointer(count: max(1, indices.count) * d)
    let complete = table.withUnsafeBufferPointer { kept in
      for (position, index) in indices.enumerated() {
        guard let row = rows[index] else { return false }
        (out + position * d).update(from: kept.baseAddress! + row * d, count: d)
      }
      return true
    }
    guard complete else { return nil }
    served += indices.count
    return out
  }
}

// The distributed sampler: one seeded shuffle per epoch, the same on every rank; each global
// batch split over the ranks (uneven splits allowed), so each image is seen once per epoch.
import Support
import Tensors

public struct DistributedSampler {
  public let datasetSize: Int
  public let globalBatch: Int
  public let rank: Int
  public let ranks: Int
  public let seed: UInt64
  /// Whether an epoch ends with its last full batch (SimCLR: a partial batch has fewer
  /// negatives, so a lower loss) instead of a partial one.
  public let dropLast: Bool

  public init(datasetSize: Int, globalBatch: Int, rank: Int, ranks: Int, seed: UInt64, dropLast: Bool = false) {
    precondition(globalBatch >= ranks && ranks > 0 && rank >= 0 && rank < ranks)
    precondition(!dropLast || datasetSize >= globalBatch, "an epoch needs at least one full batch")
    self.dropLast = dropLast
    self.datasetSize = datasetSize
    self.globalBatch = globalBatch
    self.rank = rank
    self.ranks = ranks
    self.seed = seed
  }

  /// Images rank `r` takes from a global batch of `batch`: the first batch % ranks ranks get one more.
  public static func share(of batch: Int, rank r: Int, ranks: Int) -> Int {
    batch / ranks + (r < batch % ranks ? 1 : 0)
  }

  /// Where rank `r`'s share starts inside the global batch.
  public static func offset(of batch: Int, rank r: Int, ranks: Int) -> Int {
    r * (batch / ranks) + min(r, batch % ranks)
  }

  /// Steps in one epoch: full batches, plus the last partial one if every rank gets an image
  /// (and it is not dropped).
  public var stepsPerEpoch: Int {
    datasetSize / globalBatch + (!dropLast && datasetSize % globalBatch >= ranks ? 1 : 0)
  }

  /// The epoch's order of all indices (Fisher-Yates with a generator seeded by seed and epoch).
  public func permutation(epoch: Int) -> [Int] {
    var order = Array(0..<datasetSize)
    var rng = SplitMix64(seed: seed &+ 0x9E37_79B9 &* UInt64(epoch + 1))
    if datasetSize > 1 {
      for i in stride(from: datasetSize - 1, to: 0, by: -1) {
        let j = Int(rng.next() % UInt64(i + 1))
        order.swapAt(i, j)
      }
    }
    return order
  }

  /// This rank's indices for `step` of an epoch whose order is `permutation`.
  public func indices(step: Int, permutation: [Int]) -> ArraySlice<Int> {
    let start = step * globalBatch
    let batch = min(globalBatch, datasetSize - start)
    let from = start + Self.offset(of: batch, rank: rank, ranks: ranks)
    return permutation[from..<(from + Self.share(of: batch, rank: rank, ranks: ranks))]
  }
}

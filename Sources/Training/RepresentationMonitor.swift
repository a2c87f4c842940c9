// How good the backbone's features are while SimCLR pretrains: a weighted k-nearest-neighbour
// classifier on pooled, L2-normalised features (as SSL libraries monitor a run). A fixed bank of
// labelled train images votes for each of a fixed set of validation images, which never enter
// the contrastive batches; the vote is each attribute's similarity-weighted share of positive
// neighbours, thresholds come from the bank's own leave-one-out votes, and the figure is the
// validation mean F1 over the 40 attributes (`knn_mean_f1` in metrics.jsonl).
import Data
import Distributed
import Fairness
import Foundation
import NN
import Support
import Tensors

public final class RepresentationMonitor {
  /// Train images that vote, and validation images that are classified.
  public let bank: [Int]
  public let queries: [Int]
  /// Neighbours that vote, and the temperature of their weights exp(similarity / t).
  public let neighbours: Int
  public let temperature: Float
  let dataset: PackedDataset
  let communicator: Communicator
  let threads: Int

  /// A monitor over `bankImages` train images and at most `bankImages / 2` validation images,
  /// both drawn once with a fixed seed (the same images for every run on the dataset).
  public init(
    dataset: PackedDataset, bankImages: Int, communicator: Communicator, threads: Int, neighbours: Int = 20, temperature: Float = 0.07
  ) {
    func draw(_ split: [Int], _ count: Int, stream: UInt64) -> [Int] {
      var rng = SplitMix64(seed: 0x6B6E_6E00, stream: stream)
      var order = split
      for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.index(below: i + 1)) }
      return Array(order.prefix(count)).sorted()
    }
    bank = draw(dataset.train, min(bankImages, dataset.train.count), stream: 1)
    queries = draw(dataset.validation, min(max(bankImages / 2, 1), dataset.validation.count), stream: 2)
    self.neighbours = max(1, min(neighbours, bank.count - 1))
    self.temperature = temperature
    self.dataset = dataset
    self.communicator = communicator
    self.threads = threads
  }

  /// The kNN validation mean F1 of `model`'s backbone now (eval mode; every rank of the group
  /// computes a share of the features, and every rank returns the same figure).
  public func measure(_ model: ResNet) throws -> Double {
    let width = model.featureDimension
    let images = bank + queries
    let features = try Evaluation.rows(
      model, dataset: dataset, indices: images, batch: 128, width: width, communicator: communicator, threads: threads
    ) { _, batch in UnsafePointer(model.forwardFeatures(batch).data) }
    let a = dataset.attributeCount
    let labels = images.map { image in
      let row = dataset.labels(image)
      return (0..<a).map { row[$0] != 0 }
    }
    let votes = Self.votes(features: features, width: width, bankCount: bank.count, labels: labels, neighbours: neighbours, temperature: temperature)
    return Evaluation.meanF1(
      train: Evaluation.labeled(Array(votes[0..<(bank.count * a)]), dataset: dataset, indices: bank),
      evaluated: Evaluation.labeled(Array(votes[(bank.count * a)...]), dataset: dataset, indices: queries))
  }

  /// Each row's vote for each attribute [rows, attributes]: the similarity-weighted share of
  /// positives among its `neighbours` nearest bank rows by cosine similarity (weights
  /// exp((similarity - 1) / temperature)), the bank being the first `bankCount` rows of
  /// `features` [rows, width]; a bank row does not vote for itself. `labels[row][attribute]`.
  static func votes(features: [Float], width: Int, bankCount: Int, labels: [[Bool]], neighbours: Int, temperature: Float) -> [Float] {
    let rows = labels.count
    let attributes = labels.first?.count ?? 0
    var unit = features
    for r in 0..<rows {
      var norm: Float = 0
      for j in 0..<width { norm += unit[r * width + j] * unit[r * width + j] }
      let scale = 1 / max(norm.squareRoot(), 1e-12)
      for j in 0..<width { unit[r * width + j] *= scale }
    }
    // similarity[row, b] = <row, bank b>; a bank image does not vote for itself.
    var similarity = [Float](repeating: 0, count: rows * bankCount)
    unit.withUnsafeBufferPointer { u in
      similarity.withUnsafeMutableBufferPointer { s in
        BLAS.sgemm(
          transposeB: true, m: rows, n: bankCount, k: width, a: u.baseAddress!, lda: width, b: u.baseAddress!, ldb: width,
          c: s.baseAddress!, ldc: bankCount, precision: .fp32)
      }
    }
    for b in 0..<bankCount { similarity[b * bankCount + b] = -.infinity }
    var scores = [Float](repeating: 0, count: rows * attributes)
    for r in 0..<rows {
      let row = similarity[(r * bankCount)..<((r + 1) * bankCount)]
      let nearest = row.indices.sorted { row[$0] > row[$1] }.prefix(neighbours)
      var total: Float = 0
      for b in nearest {
        let weight = exp((row[b] - 1) / temperature)
        total += weight
        for a in 0..<attributes where labels[b - r * bankCount][a] { scores[r * attributes + a] += weight }
      }
      for a in 0..<attributes { scores[r * attributes + a] /= max(total, .leastNormalMagnitude) }
    }
    return scores
  }
}

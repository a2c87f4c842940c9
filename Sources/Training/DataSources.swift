// Training batches from the background loader over a packed dataset, and evaluation: scores of
// every image of a split, thresholds from train, mean F1, scores CSV files.
import CelebAFormat
import Data
import Distributed
import Fairness
import Foundation
import NN
import Support
import Tensors

/// The rank's batches of a run over a split: the loader walks a distributed sampler epoch after
/// epoch from the run's current step, prefetching on background threads.
public final class LoaderSource: BatchSource {
  public let imageSize: Int
  public let stepsPerEpoch: Int
  private let loader: BatchLoader
  private let views: Int
  private var current: Batch?
  private var joined = Workspace()
  private let splitCount: Int
  private let globalBatch: Int

  public init(
    dataset: PackedDataset, split: [Int], globalBatch: Int, communicator: Communicator, epochs: Int, seed: UInt64,
    transform: Transform, threads: Int, firstStep: Int, dropLast: Bool = false
  ) {
    let sampler = DistributedSampler(
      datasetSize: split.count, globalBatch: globalBatch, rank: communicator.rank, ranks: communicator.size, seed: seed,
      dropLast: dropLast)
    imageSize = dataset.imageSize
    stepsPerEpoch = sampler.stepsPerEpoch
    splitCount = split.count
    self.globalBatch = globalBatch
    if case .simCLR = transform { views = 2 } else { views = 1 }
    loader = BatchLoader(
      dataset: dataset, schedule: .epochs(sampler, images: split, epochs: epochs), transform: transform,
      threads: threads, seed: seed, firstStep: firstStep)
  }

  public var waitSeconds: Double { loader.waitSeconds }

  public func batch(epoch: Int, step: Int) throws -> TrainingBatch {
    guard let batch = loader.next() else {
      throw RunError.unreadable(path: "the data loader", reason: "it ran out of batches at epoch \(epoch + 1), step \(step + 1)")
    }
    precondition(batch.step == epoch * stepsPerEpoch + step, "the loader and the trainer disagree on the step")
    current = batch
    let n = batch.indices.count
    let global = min(globalBatch, splitCount - step * globalBatch)
    guard views == 2, let second = batch.secondView else {
      return TrainingBatch(images: batch.images.data, labels: batch.labels.data, count: n, globalCount: global, indices: batch.indices)
    }
    let size = n * imageSize * imageSize * 3
    let both = joined.pointer(count: 2 * size)
    both.update(from: batch.images.data, count: size)
    (both + size).update(from: second.data, count: size)
    return TrainingBatch(images: both, labels: nil, count: n, globalCount: global)
  }
}

public enum Evaluation {
  /// Logits [indices.count, outputs] of the model in eval mode; the images are split over the
  /// group's ranks and the rows gathered, so every rank returns all of them. With `cache`,
  /// the features of the images it holds come from it and only the head runs.
  public static func scores(
    _ model: ResNet, dataset: PackedDataset, indices: [Int], batch: Int, communicator: Communicator, threads: Int,
    cache: FeatureCache? = nil
  ) throws -> [Float] {
    try rows(model, dataset: dataset, indices: indices, batch: batch, width: model.outputDimension, communicator: communicator, threads: threads) {
      b, images in
      UnsafePointer(cache?.features(b.indices).map { model.forwardHead($0, batch: images.batch) } ?? model.forward(images))
    }
  }

  /// Rows [indices.count, width], `compute` giving those of each loaded batch (at most `batch`
  /// images, plain, the model in eval mode) from its images: the images are split over the
  /// ranks of `communicator` and the rows all-gathered, so every rank returns all of them.
  static func rows(
    _ model: ResNet, dataset: PackedDataset, indices: [Int], batch: Int, width: Int, communicator: Communicator, threads: Int,
    compute: (Batch, FeatureMap) -> UnsafePointer<Float>
  ) throws -> [Float] {
    let ranks = communicator.size
    let shares = (0..<ranks).map { DistributedSampler.share(of: indices.count, rank: $0, ranks: ranks) }
    let offset = DistributedSampler.offset(of: indices.count, rank: communicator.rank, ranks: ranks)
    let mine = Array(indices[offset..<(offset + shares[communicator.rank])])
    let steps = (mine.count + batch - 1) / batch
    let loader = BatchLoader(
      dataset: dataset, schedule: BatchSchedule(steps: steps) { step in Array(mine[(step * batch)..<min(mine.count, (step + 1) * batch)]) },
      transform: .none, threads: threads, seed: 0)
    var local = [Float](repeating: 0, count: mine.count * width)
    let training = model.batchNorms.map(\.training)
    model.setBatchNormTraining(false)
    defer { for (bn, mode) in zip(model.batchNorms, training) { bn.training = mode } }
    var row = 0
    while let b = loader.next() {
      let n = b.indices.count
      let images = FeatureMap(data: b.images.data, batch: n, height: dataset.imageSize, width: dataset.imageSize, channels: 3)
      let out = compute(b, images)
      local.withUnsafeMutableBufferPointer { ($0.baseAddress! + row * width).update(from: out, count: n * width) }
      row += n
    }
    var all = [Float](repeating: 0, count: indices.count * width)
    try local.withUnsafeBufferPointer { send in
      try all.withUnsafeMutableBufferPointer {
        try communicator.allGatherVariable(send.baseAddress!, count: send.count, into: $0.baseAddress!, counts: shares.map { $0 * width })
      }
    }
    return all
  }

  public static func labeled(_ scores: [Float], dataset: PackedDataset, indices: [Int]) -> LabeledScores {
    let a = dataset.attributeCount
    var labels = [Bool](repeating: false, count: indices.count * a)
    for (row, image) in indices.enumerated() {
      let source = dataset.labels(image)
      for k in 0..<a { labels[row * a + k] = source[k] != 0 }
    }
    let names = a == CelebA.attributeCount ? CelebA.attributeNames : (0..<a).map { "attribute\($0)" }
    return LabeledScores(
      attributeNames: names, images: indices.map { dataset.imageNames[$0] }, labels: labels, scores: scores.map(Double.init))
  }

  /// Mean F1 over the attributes on `evaluated`, each thresholded where it maximises train F1.
  public static func meanF1(train: LabeledScores, evaluated: LabeledScores) -> Double {
    let thresholds = Thresholds.calibrate(train)
    let a = evaluated.attributeCount
    var total = 0.0
    for k in 0..<a {
      var tp = 0
      var predicted = 0
      var positives = 0
      for i in 0..<evaluated.imageCount {
        let p = thresholds[k].predicts(evaluated.scores[i * a + k])
        let y = evaluated.labels[i * a + k]
        if p { predicted += 1 }
        if y { positives += 1 }
        if p && y { tp += 1 }
      }
      total += f1(truePositives: tp, predicted: predicted, positives: positives)
    }
    return total / Double(a)
  }

  /// Validation mean F1 with thresholds from (at most `trainLimit` of) the train images: the
  /// per-epoch metric of sweeps.
  public static func validationF1(
    _ model: ResNet, dataset: PackedDataset, trainLimit: Int, communicator: Communicator, threads: Int, batch: Int = 256,
    cache: FeatureCache? = nil
  ) throws -> Double {
    let train = Array(dataset.train.prefix(trainLimit))
    let val = dataset.validation
    guard !val.isEmpty else { return .nan }
    let trainScores = try scores(model, dataset: dataset, indices: train, batch: batch, communicator: communicator, threads: threads, cache: cache)
    let valScores = try scores(model, dataset: dataset, indices: val, batch: batch, communicator: communicator, threads: threads, cache: cache)
    return meanF1(train: labeled(trainScores, dataset: dataset, indices: train), evaluated: labeled(valScores, dataset: dataset, indices: val))
  }

  /// `image,<attribute names>` and one row of scores per image, written atomically.
  public static func writeCSV(_ scores: LabeledScores, to path: String) throws {
    var text = "image," + scores.attributeNames.joined(separator: ",") + "\n"
    let a = scores.attributeCount
    for i in 0..<scores.imageCount {
      text += scores.images[i]
      for k in 0..<a { text += "," + String(format: "%.6g", scores.scores[i * a + k]) }
      text += "\n"
    }
    try AtomicFile.write(Array(text.utf8), to: path)
  }
}

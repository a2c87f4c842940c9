// Per-attribute decision thresholds that maximise F1 on the train split.
import Dispatch

/// A decision rule for one attribute: an image is predicted positive when its score is at least
/// `value`. `value` is +infinity when the train split has no positive example: every threshold
/// then has train F1 0, and predicting no positive is the only rule that is not wrong on every
/// image it flags.
public struct Threshold: Equatable, Sendable {
  public let value: Double
  /// The train F1 at this threshold.
  public let trainF1: Double

  public init(value: Double, trainF1: Double) {
    self.value = value
    self.trainF1 = trainF1
  }

  public func predicts(_ score: Double) -> Bool { score >= value }
}

public enum Thresholds {
  /// The threshold maximising train F1 for each attribute of `train`, in attribute order,
  /// computed for all attributes at once on the available cores.
  public static func calibrate(_ train: LabeledScores) -> [Threshold] {
    let attributeCount = train.attributeCount
    var thresholds = [Threshold](repeating: Threshold(value: .infinity, trainF1: 0), count: attributeCount)
    thresholds.withUnsafeMutableBufferPointer { output in
      let output = output
      DispatchQueue.concurrentPerform(iterations: attributeCount) { attribute in
        var positives: [Double] = []
        var negatives: [Double] = []
        for image in 0..<train.imageCount {
          let index = image * attributeCount + attribute
          if train.labels[index] {
            positives.append(train.scores[index])
          } else {
            negatives.append(train.scores[index])
          }
        }
        output[attribute] = optimal(positiveScores: positives, negativeScores: negatives)
      }
    }
    return thresholds
  }

  /// The exact maximiser of F1 = 2 TP / (TP + FP + P) over every distinct train score as the
  /// threshold. Both lists are sorted once, descending, and swept together: lowering the
  /// threshold to the next distinct score adds all images with that score.
  ///
  /// Ties: F1 values are compared exactly, as fractions of integers, and among equal F1 the
  /// highest threshold (fewest predicted positives) wins.
  public static func optimal(positiveScores: [Double], negativeScores: [Double]) -> Threshold {
    let positiveCount = positiveScores.count
    guard positiveCount > 0 else { return Threshold(value: .infinity, trainF1: 0) }
    let positives = positiveScores.sorted(by: >)
    let negatives = negativeScores.sorted(by: >)
    var best = (value: Double.infinity, truePositives: 0, predicted: 0)
    var truePositives = 0
    var falsePositives = 0
    while truePositives < positiveCount || falsePositives < negatives.count {
      let nextPositive = truePositives < positiveCount ? positives[truePositives] : -.infinity
      let nextNegative = falsePositives < negatives.count ? negatives[falsePositives] : -.infinity
      let value = max(nextPositive, nextNegative)
      while truePositives < positiveCount && positives[truePositives] == value { truePositives += 1 }
      while falsePositives < negatives.count && negatives[falsePositives] == value { falsePositives += 1 }
      let predicted = truePositives + falsePositives
      // F1 is 2 TP / (predicted + P); compare TP / (predicted + P) across thresholds without
      // rounding by cross-multiplying.
      if truePositives * (best.predicted + positiveCount) > best.truePositives * (predicted + positiveCount) {
        best = (value, truePositives, predicted)
      }
    }
    return Threshold(
      value: best.value,
      trainF1: f1(truePositives: best.truePositives, predicted: best.predicted, positives: positiveCount))
  }
}

/// F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (predicted positives + positives), and 0 when both are
/// zero (no positive and none predicted): the usual zero-division convention.
@inlinable
public func f1(truePositives: Int, predicted: Int, positives: Int) -> Double {
  let denominator = predicted + positives
  return denominator == 0 ? 0 : Double(2 * truePositives) / Double(denominator)
}

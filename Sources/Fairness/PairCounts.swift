// Confusion counts for every (task, condition) pair from bit-packed label and prediction columns.

/// Binary labels and thresholded predictions of a set of images.
public struct Outcomes: Sendable {
  public let attributeCount: Int
  public let imageCount: Int
  /// `labels[image * attributeCount + attribute]`.
  public let labels: [Bool]
  /// `predictions[image * attributeCount + attribute]`.
  public let predictions: [Bool]

  public init(attributeCount: Int, imageCount: Int, labels: [Bool], predictions: [Bool]) {
    precondition(labels.count == attributeCount * imageCount, "labels must be images x attributes")
    precondition(predictions.count == labels.count, "predictions must be images x attributes")
    self.attributeCount = attributeCount
    self.imageCount = imageCount
    self.labels = labels
    self.predictions = predictions
  }

  /// The test labels with each score thresholded by its attribute's threshold.
  public init(_ split: LabeledScores, thresholds: [Threshold]) {
    precondition(thresholds.count == split.attributeCount, "one threshold per attribute")
    let attributeCount = split.attributeCount
    var predictions = [Bool](repeating: false, count: split.scores.count)
    for index in 0..<split.scores.count {
      predictions[index] = thresholds[index % attributeCount].predicts(split.scores[index])
    }
    self.init(
      attributeCount: attributeCount, imageCount: split.imageCount, labels: split.labels, predictions: predictions)
  }
}

/// For every task t and condition c, the true positives, predicted positives and positives of t
/// among the images where c is true; a last condition row, index `attributeCount`, counts all
/// images, so the counts where c is false are that row minus row c. With bootstrap weights each
/// image counts as many times as it was drawn.
public struct PairCounts: Equatable, Sendable {
  public let attributeCount: Int
  /// The number of images (the sum of the weights when weighted).
  public let imageCount: Int
  /// `truePositives[condition * attributeCount + task]`.
  public var truePositives: [Int]
  public var predictedPositives: [Int]
  public var positives: [Int]

  public init(attributeCount: Int, imageCount: Int) {
    let size = (attributeCount + 1) * attributeCount
    self.attributeCount = attributeCount
    self.imageCount = imageCount
    truePositives = [Int](repeating: 0, count: size)
    predictedPositives = [Int](repeating: 0, count: size)
    positives = [Int](repeating: 0, count: size)
  }

  /// The number of images where `condition` is true (its positives within itself).
  public func imagesWhere(_ condition: Int) -> Int {
    positives[condition * attributeCount + condition]
  }

  /// The counts in one pass over the images: each attribute's labels, predictions and true
  /// positives are packed 64 images to a word, and every count is a popcount of two ANDed
  /// columns, so the 40 x 41 x 3 counts of CelebA cost 4,920 passes over 312 words instead of
  /// 1,560 passes over 19,962 images.
  public static func count(_ outcomes: Outcomes) -> PairCounts {
    let attributeCount = outcomes.attributeCount
    let wordCount = (outcomes.imageCount + 63) / 64
    var labelColumns = [UInt64](repeating: 0, count: attributeCount * wordCount)
    var predictionColumns = labelColumns
    for image in 0..<outcomes.imageCount {
      let bit = UInt64(1) << UInt64(image & 63)
      for attribute in 0..<attributeCount {
        let word = attribute * wordCount + image >> 6
        if outcomes.labels[image * attributeCount + attribute] { labelColumns[word] |= bit }
        if outcomes.predictions[image * attributeCount + attribute] { predictionColumns[word] |= bit }
      }
    }
    let truePositiveColumns = zip(labelColumns, predictionColumns).map { $0 & $1 }
    var counts = PairCounts(attributeCount: attributeCount, imageCount: outcomes.imageCount)
    guard wordCount > 0, attributeCount > 0 else { return counts }
    labelColumns.withUnsafeBufferPointer { labels in
      predictionColumns.withUnsafeBufferPointer { predictions in
        truePositiveColumns.withUnsafeBufferPointer { truePositives in
          func column(_ buffer: UnsafeBufferPointer<UInt64>, _ attribute: Int) -> UnsafePointer<UInt64> {
            buffer.baseAddress! + attribute * wordCount
          }
          for task in 0..<attributeCount {
            let taskColumns = [truePositives, predictions, labels].map { column($0, task) }
            for condition in 0...attributeCount {
              let mask = condition < attributeCount ? column(labels, condition) : nil
              var sums = [0, 0, 0]
              for kind in 0..<3 {
                let values = taskColumns[kind]
                var sum = 0
                if let mask {
                  for word in 0..<wordCount { sum &+= (values[word] & mask[word]).nonzeroBitCount }
                } else {
                  for word in 0..<wordCount { sum &+= values[word].nonzeroBitCount }
                }
                sums[kind] = sum
              }
              let index = condition * attributeCount + task
              counts.truePositives[index] = sums[0]
              counts.predictedPositives[index] = sums[1]
              counts.positives[index] = sums[2]
            }
          }
        }
      }
    }
    return counts
  }
}

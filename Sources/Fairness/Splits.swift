// The train and test splits joined from the attribute, partition and scores files, with every
// disagreement between the files reported.
import CelebAFormat

/// Labels and scores of the images of one split.
public struct LabeledScores: Sendable {
  public let attributeNames: [String]
  public let images: [String]
  /// `labels[image * attributeCount + attribute]`.
  public let labels: [Bool]
  /// `scores[image * attributeCount + attribute]`.
  public let scores: [Double]

  public var attributeCount: Int { attributeNames.count }
  public var imageCount: Int { images.count }

  public init(attributeNames: [String], images: [String], labels: [Bool], scores: [Double]) {
    precondition(labels.count == attributeNames.count * images.count, "labels must be images x attributes")
    precondition(scores.count == labels.count, "scores must be images x attributes")
    self.attributeNames = attributeNames
    self.images = images
    self.labels = labels
    self.scores = scores
  }
}

/// The train split (for thresholds) and the test split (for the fairness metrics).
public struct EvaluationSplits: Sendable {
  public let train: LabeledScores
  public let test: LabeledScores

  public init(train: LabeledScores, test: LabeledScores) {
    self.train = train
    self.test = test
  }

  /// Joins the files: the partition decides which images are train and test; each of them must
  /// have a row in the attribute file and in the scores (`trainScores` for train images when
  /// given). The scores must name the attribute file's attributes in the same order, and every
  /// scored image must be in the attribute file. Validation images are not used.
  public init(
    attributes: CelebAAttributes, partition: CelebAPartition, scores: ScoreTable, trainScores: ScoreTable? = nil
  ) throws {
    for table in [scores, trainScores].compactMap({ $0 }) {
      try Self.checkAgreement(attributes: attributes, scores: table)
    }
    train = try Self.split(.train, attributes: attributes, partition: partition, scores: trainScores ?? scores)
    test = try Self.split(.test, attributes: attributes, partition: partition, scores: scores)
  }

  private static func checkAgreement(attributes: CelebAAttributes, scores: ScoreTable) throws {
    if scores.names != attributes.names {
      let column =
        zip(scores.names, attributes.names).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(scores.names.count, attributes.names.count)
      let found = column < scores.names.count ? "'\(scores.names[column])'" : "nothing"
      let expected = column < attributes.names.count ? "'\(attributes.names[column])'" : "nothing"
      throw InputError(
        file: scores.file, line: scores.headerLine,
        "attribute \(column + 1) of the header is \(found) but \(attributes.file) line \(attributes.headerLine) has \(expected) there; the scores must name the attribute file's \(attributes.names.count) attributes in the same order."
      )
    }
    for (row, image) in scores.images.enumerated() where attributes.imageIndex[image] == nil {
      throw InputError(
        file: scores.file, line: scores.lines[row],
        "image \(image) is not in the attribute file \(attributes.file); are both files from the same dataset?")
    }
  }

  private static func split(
    _ split: CelebASplit, attributes: CelebAAttributes, partition: CelebAPartition, scores: ScoreTable
  ) throws -> LabeledScores {
    let attributeCount = attributes.names.count
    var images: [String] = []
    var labels: [Bool] = []
    var values: [Double] = []
    for (entry, image) in partition.images.enumerated() where partition.splits[entry] == split {
      let placement = "\(partition.file) line \(partition.lines[entry]) puts in the \(split.name) split"
      guard let labelRow = attributes.imageIndex[image] else {
        throw InputError(
          file: attributes.file, line: nil, "has no row for image \(image), which \(placement).")
      }
      guard let scoreRow = scores.imageIndex[image] else {
        throw InputError(file: scores.file, line: nil, "has no row for image \(image), which \(placement).")
      }
      images.append(image)
      labels.append(contentsOf: attributes.labels[labelRow * attributeCount..<(labelRow + 1) * attributeCount])
      values.append(contentsOf: scores.scores[scoreRow * attributeCount..<(scoreRow + 1) * attributeCount])
    }
    guard !images.isEmpty else {
      throw InputError(
        file: partition.file, line: nil, "puts no image in the \(split.name) split (code \(split.rawValue)).")
    }
    return LabeledScores(attributeNames: attributes.names, images: images, labels: labels, scores: values)
  }
}

// One evaluation end to end: thresholds from train, pair metrics on test, bootstrap intervals,
// and the paired comparison with a second model on the same resamples.
import CelebAFormat

/// Thresholds, test outcomes and fairness summary of one model.
public struct ModelEvaluation: Sendable {
  public let thresholds: [Threshold]
  public let outcomes: Outcomes
  public let summary: FairnessSummary

  /// `minimumSupport`: the positives each subgroup of a pair needs for the pair to be used.
  public init(_ splits: EvaluationSplits, minimumSupport: Int = PairSelection.defaultMinimum) {
    thresholds = Thresholds.calibrate(splits.train)
    outcomes = Outcomes(splits.test, thresholds: thresholds)
    let counts = PairCounts.count(outcomes)
    summary = FairnessSummary(counts, selection: PairSelection(counts, minimum: minimumSupport))
  }
}

/// How to resample: `resamples` bootstrap draws of the test images from random stream `seed`,
/// the coverage of the intervals and how they are made.
public struct BootstrapOptions: Sendable {
  public let resamples: Int
  public let seed: UInt64
  public let level: Double
  public let method: IntervalMethod

  public init(resamples: Int, seed: UInt64, level: Double = 0.95, method: IntervalMethod = .bounded) {
    self.resamples = resamples
    self.seed = seed
    self.level = level
    self.method = method
  }

  /// The level of the paired interval an equivalence test (two one-sided tests at 5% each)
  /// checks against its margin.
  public static let equivalenceLevel = 0.90
}

/// A second model evaluated on the same test images, and the intervals of the differences
/// (first model minus this one) over the same resamples: at the options' level (is one better?)
/// and at the equivalence level (are they within a margin?).
public struct Comparison: Sendable {
  public let name: String
  public let model: ModelEvaluation
  public let intervals: BootstrapIntervals?
  public let differenceIntervals: BootstrapIntervals?
  public let equivalenceIntervals: BootstrapIntervals?
}

public struct FairnessEvaluation: Sendable {
  public let attributeNames: [String]
  public let trainImages: Int
  public let testImages: Int
  public let model: ModelEvaluation
  public let bootstrap: BootstrapOptions?
  public let intervals: BootstrapIntervals?
  public let comparison: Comparison?

  /// `compared` must hold the same test images in the same order as `splits`, which is so when
  /// both were joined with the same attribute and partition files.
  public init(
    _ splits: EvaluationSplits, bootstrap: BootstrapOptions? = nil,
    compared: (name: String, splits: EvaluationSplits)? = nil, minimumSupport: Int = PairSelection.defaultMinimum
  ) throws {
    if let compared {
      guard compared.splits.test.images == splits.test.images, compared.splits.test.labels == splits.test.labels else {
        throw InputError(
          file: compared.name, line: nil,
          "does not cover the same test images with the same labels as the model it is compared with; compare scores of the same dataset."
        )
      }
    }
    attributeNames = splits.test.attributeNames
    trainImages = splits.train.imageCount
    testImages = splits.test.imageCount
    model = ModelEvaluation(splits, minimumSupport: minimumSupport)
    let other = compared.map { ModelEvaluation($0.splits, minimumSupport: minimumSupport) }
    self.bootstrap = bootstrap
    var statistics: [[ResampleStatistic]] = []
    if let bootstrap, bootstrap.resamples > 0 {
      statistics = Bootstrap.resample(
        [model.outcomes] + (other.map { [$0.outcomes] } ?? []), count: bootstrap.resamples, seed: bootstrap.seed,
        selection: model.summary.selection)
    }
    let level = bootstrap?.level ?? 0.95
    let method = bootstrap?.method ?? .bounded
    let selection = model.summary.selection
    let estimate = ResampleStatistic(model.summary)
    let first = statistics.first.map { Resampled(estimate: estimate, resamples: $0, selection: selection) }
    intervals = first.map { BootstrapIntervals($0, level: level, method: method) }
    if let compared, let other {
      let second = statistics.count == 2 ? Resampled(estimate: ResampleStatistic(other.summary), resamples: statistics[1], selection: selection) : nil
      comparison = Comparison(
        name: compared.name, model: other,
        intervals: second.map { BootstrapIntervals($0, level: level, method: method) },
        differenceIntervals: first.flatMap { a in second.map { BootstrapIntervals(difference: a, $0, level: level, method: method) } },
        equivalenceIntervals: first.flatMap { a in
          second.map { BootstrapIntervals(difference: a, $0, level: BootstrapOptions.equivalenceLevel, method: method) }
        })
    } else {
      comparison = nil
    }
  }
}

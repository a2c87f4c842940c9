// The edge cases the metrics define: no train positive, subgroups without positives (undefined
// pairs), pairs below the minimum support, an attribute with no subgroup to compare, empty
// bootstrap subgroups, and identical models compared.
import CelebAFormat
import Fairness
import XCTest

final class DegenerateCaseTests: XCTestCase {
  func testAttributeWithoutTrainPositivesPredictsNothing() {
    let train = LabeledScores(
      attributeNames: ["a0", "a1"], images: ["1", "2"], labels: [true, false, false, false], scores: [2, 5, 1, 7])
    let thresholds = Thresholds.calibrate(train)
    XCTAssertEqual(thresholds[1], Threshold(value: .infinity, trainF1: 0))
    let test = LabeledScores(
      attributeNames: ["a0", "a1"], images: ["3", "4"], labels: [true, true, false, true], scores: [3, 1e300, 0, 9])
    let outcomes = Outcomes(test, thresholds: thresholds)
    XCTAssertEqual(outcomes.predictions, [true, false, false, false])
  }

  /// Every pair of every condition with at least one positive on each side.
  func everyDefinedPair(_ outcomes: Outcomes) -> FairnessSummary {
    let counts = PairCounts.count(outcomes)
    return FairnessSummary(counts, selection: PairSelection(counts, minimum: 1))
  }

  func testSubgroupWithoutPositivesIsUndefinedNotZero() {
    // a1 (task) has no positive among the images where a0 is true (1, 2), and a0 none where a1
    // is true (3): both pairs are undefined, so a0 and a1 have no gap, where counting the
    // empty subgroup's F1 as 0 would have given a0 a gap of 2/3 and a worst of 0.
    let outcomes = Outcomes(
      attributeCount: 2, imageCount: 4,
      labels: [true, false, true, false, false, true, false, false],
      predictions: [true, false, false, false, true, true, false, true])
    let summary = everyDefinedPair(outcomes)
    XCTAssertEqual(summary.f1GivenCondition[0 * 2 + 1], 0, "the subgroup's F1 is still shown")
    // A ratio of small counts in Double: exact to ~1e-16.
    XCTAssertEqual(summary.f1GivenNotCondition[0 * 2 + 1]!, 2.0 / 3, accuracy: 1e-12)
    XCTAssertNil(summary.pairGap[0 * 2 + 1])
    XCTAssertNil(summary.pairWorst[0 * 2 + 1])
    XCTAssertNil(summary.gap[0])
    XCTAssertNil(summary.worst[0])
    XCTAssertEqual(summary.selection.undefined, 2)
    XCTAssertEqual(summary.selection.used, 0)
    XCTAssertEqual(summary.selection.support, [0, 0, 0, 0])
    XCTAssertNil(summary.allWorst, "no pair is defined, so there is no worst to drag to 0")
  }

  func testPairsBelowTheMinimumSupportAreLeftOutAndCounted() {
    // Three attributes on 40 images: a0 true on the first 20. a1 has 12 positives where a0 is
    // true and 12 where it is false; a2 has 12 where a0 is true and 3 where it is false.
    let n = 40
    var labels = [Bool](repeating: false, count: n * 3)
    for image in 0..<n {
      labels[image * 3] = image < 20
      labels[image * 3 + 1] = image % 20 < 12
      labels[image * 3 + 2] = image < 12 || (image >= 20 && image < 23)
    }
    let outcomes = Outcomes(attributeCount: 3, imageCount: n, labels: labels, predictions: labels)
    let counts = PairCounts.count(outcomes)
    let selection = PairSelection(counts, minimum: 10)
    XCTAssertEqual(selection.support[0 * 3 + 1], 12)
    XCTAssertEqual(selection.support[0 * 3 + 2], 3)
    XCTAssertTrue(selection.included[0 * 3 + 1])
    XCTAssertFalse(selection.included[0 * 3 + 2], "3 positives where a0 is false: below 10")
    XCTAssertEqual(selection.usedPerCondition[0], 1)
    let summary = FairnessSummary(counts, selection: selection)
    XCTAssertNil(summary.pairGap[0 * 3 + 2])
    XCTAssertEqual(summary.gap[0], 0, "a perfect model has no gap on the pair that is used")
    XCTAssertEqual(selection.used + selection.undefined + selection.belowMinimum, 3 * 2)
    XCTAssertEqual(PairSelection(counts, minimum: 3).included[0 * 3 + 2], true)
  }

  func testAttributeNeverOrAlwaysTrueInTestHasNoGapAndIsLeftOutOfAll() {
    // a1 is never true, a2 always true; a0 splits the images.
    let outcomes = Outcomes(
      attributeCount: 3, imageCount: 3,
      labels: [true, false, true, false, false, true, true, false, true],
      predictions: [true, false, true, true, false, true, false, false, true])
    let summary = everyDefinedPair(outcomes)
    XCTAssertNil(summary.gap[1])
    XCTAssertNil(summary.worst[2])
    XCTAssertEqual(summary.rho, [1.0 / 3, 0, 0])
    XCTAssertTrue(summary.f1GivenCondition[3..<9].allSatisfy { $0 == nil }, "rows of a1 and a2 are empty")
    XCTAssertNotNil(summary.gap[0])
    XCTAssertEqual(summary.allGap, summary.gap[0], "the median of the one attribute that has a gap")
    // a1 as a task in a0's subgroups: no positive anywhere, so undefined and not averaged.
    XCTAssertNil(summary.pairGap[0 * 3 + 1])
    XCTAssertEqual(summary.selection.usedPerCondition[0], 1)
  }

  func testNoAttributeWithAGapMeansNoAll() {
    let outcomes = Outcomes(
      attributeCount: 2, imageCount: 2, labels: [true, false, true, false], predictions: [true, false, true, false])
    let summary = FairnessSummary(PairCounts.count(outcomes))
    XCTAssertNil(summary.allGap)
    XCTAssertNil(summary.allWorst)
  }

  func testBootstrapSkipsResamplesWhereASubgroupVanishes() {
    // a0 is true on one image of five: (4/5)^5 = 33% of resamples miss it.
    let outcomes = Outcomes(
      attributeCount: 2, imageCount: 5,
      labels: [true, true, false, true, false, false, false, true, false, false],
      predictions: [true, true, false, false, false, true, false, true, false, false])
    let counts = PairCounts.count(outcomes)
    let selection = PairSelection(counts, minimum: 1)
    let statistics = Bootstrap.resample([outcomes], count: 300, seed: 9, selection: selection)[0]
    let defined = statistics.filter { $0.gap[0] != nil }.count
    // Binomial(300, 0.67): mean 201, standard deviation 8; both bounds are 6 deviations away.
    XCTAssertGreaterThan(defined, 150)
    XCTAssertLessThan(defined, 250)
    let estimate = ResampleStatistic(FairnessSummary(counts, selection: selection))
    let intervals = BootstrapIntervals(Resampled(estimate: estimate, resamples: statistics, selection: selection), level: 0.95)
    XCTAssertEqual(intervals.gap[0]?.resamples, defined)
  }

  func testComparingAModelWithItselfGivesZeroDifferences() throws {
    let split = randomSplit(images: 120, attributes: 4, seed: 3)
    let splits = EvaluationSplits(train: split, test: randomSplit(images: 90, attributes: 4, seed: 4))
    let evaluation = try FairnessEvaluation(
      splits, bootstrap: BootstrapOptions(resamples: 50, seed: 1), compared: (name: "same", splits: splits), minimumSupport: 1)
    let differences = try XCTUnwrap(evaluation.comparison?.differenceIntervals)
    XCTAssertEqual(differences.allGap, Interval(low: 0, high: 0, estimate: 0, mean: 0, resamples: 50))
    XCTAssertTrue(differences.worst.allSatisfy { $0?.low == 0 && $0?.high == 0 })
    XCTAssertEqual(evaluation.comparison?.intervals?.allGap, evaluation.intervals?.allGap)
  }

  func testAModelComparedWithItselfIsEquivalent() throws {
    let splits = EvaluationSplits(train: randomSplit(images: 300, attributes: 5, seed: 13), test: randomSplit(images: 250, attributes: 5, seed: 14))
    let model = ModelEvaluation(splits, minimumSupport: 1)
    let comparison = PairedComparison(model, model, options: BootstrapOptions(resamples: 60, seed: 2))
    let intervals: [(Interval?, Interval?, Bool)] = [
      (comparison.intervals.allWorst, comparison.equivalence.allWorst, true),
      (comparison.intervals.allGap, comparison.equivalence.allGap, false),
      (comparison.meanF1, comparison.meanF1Equivalence, true),
    ]
    for (interval, equivalence, higherIsBetter) in intervals {
      let decided = Verdict.decide(try XCTUnwrap(interval), equivalence: try XCTUnwrap(equivalence), margin: 0.02, higherIsBetter: higherIsBetter)
      XCTAssertEqual(decided.verdict, .equivalent)
    }
  }

  func testVerdictsFromPairedIntervals() {
    func interval(_ low: Double, _ high: Double) -> Interval { Interval(low: low, high: high, estimate: (low + high) / 2, mean: 0, resamples: 1) }
    // Excludes 0 upward: better where higher is better, worse for a gap.
    XCTAssertEqual(Verdict.decide(interval(0.01, 0.05), equivalence: interval(0.015, 0.045), margin: 0.02, higherIsBetter: true).verdict, .better)
    XCTAssertEqual(Verdict.decide(interval(0.01, 0.05), equivalence: interval(0.015, 0.045), margin: 0.02, higherIsBetter: false).verdict, .worse)
    // Significant but inside the margin: better, and said to be smaller than the margin.
    let small = Verdict.decide(interval(0.002, 0.012), equivalence: interval(0.003, 0.011), margin: 0.02, higherIsBetter: true)
    XCTAssertEqual(small.verdict, .better)
    XCTAssertTrue(small.withinMargin)
    // Straddles 0: equivalent only when the 90% interval is inside ±margin.
    XCTAssertEqual(Verdict.decide(interval(-0.01, 0.012), equivalence: interval(-0.008, 0.01), margin: 0.02, higherIsBetter: true).verdict, .equivalent)
    XCTAssertEqual(Verdict.decide(interval(-0.04, 0.03), equivalence: interval(-0.035, 0.025), margin: 0.02, higherIsBetter: true).verdict, .inconclusive)
  }

  func testBasicIntervalReflectsThePercentilesAroundTheEstimate() throws {
    // Resamples biased upward by 0.1 around an estimate of 1: the basic interval and the
    // bias-corrected estimate move down by the same 0.1.
    let values = (0..<101).map { 1.1 + Double($0 - 50) / 500 }
    let basic = try XCTUnwrap(bootstrapInterval(values, estimate: 1, level: 0.9, method: .basic))
    let percentile = try XCTUnwrap(bootstrapInterval(values, estimate: 1, level: 0.9, method: .percentile))
    // Quantiles and reflections of values near 1 in Double: a few ulps (~1e-16) apart.
    XCTAssertEqual(basic.estimate, 0.9, accuracy: 1e-12)
    XCTAssertEqual(basic.low, 2 - percentile.high, accuracy: 1e-12)
    XCTAssertEqual(basic.high, 2 - percentile.low, accuracy: 1e-12)
    XCTAssertEqual(percentile.estimate, 1)
    XCTAssertFalse(percentile.contains(1), "the percentile interval of a biased statistic can miss its own estimate")
    XCTAssertTrue(basic.contains(basic.estimate))
  }

  func testPairedDifferenceUsesTheSameResamples() throws {
    let train = randomSplit(images: 300, attributes: 4, seed: 21)
    let test = randomSplit(images: 200, attributes: 4, seed: 22)
    let shifted = LabeledScores(
      attributeNames: test.attributeNames, images: test.images, labels: test.labels,
      scores: test.scores.enumerated().map { $0.element + ($0.offset % 7 == 0 ? 0.4 : 0) })
    let first = EvaluationSplits(train: train, test: test)
    let second = EvaluationSplits(train: train, test: shifted)
    let evaluation = try FairnessEvaluation(
      first, bootstrap: BootstrapOptions(resamples: 40, seed: 8, method: .basic), compared: (name: "shifted", splits: second), minimumSupport: 1)
    let compared = try XCTUnwrap(evaluation.comparison)
    let statistics = Bootstrap.resample(
      [evaluation.model.outcomes, compared.model.outcomes], count: 40, seed: 8, selection: evaluation.model.summary.selection)
    let differences = zip(statistics[0], statistics[1]).compactMap { pair -> Double? in
      guard let a = pair.0.allGap, let b = pair.1.allGap else { return nil }
      return a - b
    }
    let estimate = try XCTUnwrap(evaluation.model.summary.allGap) - XCTUnwrap(compared.model.summary.allGap)
    let expected = bootstrapInterval(differences, estimate: estimate, level: 0.95, method: .basic)
    XCTAssertEqual(compared.differenceIntervals?.allGap, expected)
    XCTAssertNotEqual(expected?.low, expected?.high, "the two models differ on some resamples")
  }

  func testComparedScoresMustCoverTheSameTestImages() {
    let train = randomSplit(images: 50, attributes: 3, seed: 1)
    let test = randomSplit(images: 40, attributes: 3, seed: 2)
    let other = randomSplit(images: 41, attributes: 3, seed: 2)
    XCTAssertThrowsError(
      try FairnessEvaluation(
        EvaluationSplits(train: train, test: test),
        compared: (name: "other.csv", splits: EvaluationSplits(train: train, test: other)))
    ) { error in
      XCTAssertEqual((error as? InputError)?.file, "other.csv")
    }
  }

  func testPercentileIntervalInterpolatesLikeNumPy() throws {
    // numpy.percentile([1, 2, 3, 4, 10], [2.5, 97.5]) = [1.1, 9.4]
    let interval = try XCTUnwrap(bootstrapInterval([10, 1, 3, 2, 4], estimate: 4, level: 0.95, method: .percentile))
    // One linear interpolation in Double: a few ulps of values below 10 (~1e-15).
    XCTAssertEqual(interval.low, 1.1, accuracy: 1e-12)
    XCTAssertEqual(interval.high, 9.4, accuracy: 1e-12)
    XCTAssertEqual(interval.mean, 4)
    XCTAssertNil(bootstrapInterval([], estimate: 0, level: 0.95, method: .percentile))
  }

  func testMedianOfEvenAndOddCounts() {
    XCTAssertEqual(median([3, 1, 2]), 2)
    XCTAssertEqual(median([4, 1, 3, 2]), 2.5)
    XCTAssertNil(median([]))
  }
}

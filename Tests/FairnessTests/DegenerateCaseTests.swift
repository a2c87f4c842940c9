// The edge cases the metrics define: no train positive, zero-division subgroups, an attribute
// with no subgroup to compare, empty bootstrap subgroups, and identical models compared.
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

  func testSubgroupWithoutPositivesOrPredictionsHasF1ZeroAndIsListed() {
    // a1 (task) has no positive and no prediction among the images where a0 is true (1, 2).
    let outcomes = Outcomes(
      attributeCount: 2, imageCount: 4,
      labels: [true, false, true, false, false, true, false, false],
      predictions: [true, false, false, false, true, true, false, true])
    let summary = FairnessSummary(PairCounts.count(outcomes))
    XCTAssertEqual(summary.f1GivenCondition[0 * 2 + 1], 0)
    // Where a0 is false (3, 4): a1 TP 1 (3), FP 1 (4) -> 2/3.
    XCTAssertEqual(summary.f1GivenNotCondition[0 * 2 + 1]!, 2.0 / 3, accuracy: 1e-12)
    XCTAssertEqual(summary.zeroDivisions, [ZeroDivision(task: 1, condition: 0, conditionValue: true)])
    XCTAssertEqual(summary.gap[0]!, 2.0 / 3, accuracy: 1e-12)
    XCTAssertEqual(summary.worst[0], 0)
  }

  func testAttributeNeverOrAlwaysTrueInTestHasNoGapAndIsLeftOutOfAll() {
    // a1 is never true, a2 always true; a0 splits the images.
    let outcomes = Outcomes(
      attributeCount: 3, imageCount: 3,
      labels: [true, false, true, false, false, true, true, false, true],
      predictions: [true, false, true, true, false, true, false, false, true])
    let summary = FairnessSummary(PairCounts.count(outcomes))
    XCTAssertNil(summary.gap[1])
    XCTAssertNil(summary.worst[2])
    XCTAssertEqual(summary.rho, [1.0 / 3, 0, 0])
    XCTAssertTrue(summary.f1GivenCondition[3..<9].allSatisfy { $0 == nil }, "rows of a1 and a2 are empty")
    XCTAssertNotNil(summary.gap[0])
    XCTAssertEqual(summary.allGap, summary.gap[0], "the median of the one attribute that has a gap")
    // a1 as a task in a0's subgroups: no positive anywhere; predicted nowhere -> 0 by convention.
    XCTAssertTrue(summary.zeroDivisions.contains(ZeroDivision(task: 1, condition: 0, conditionValue: true)))
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
    let statistics = Bootstrap.resample([outcomes], count: 300, seed: 9)[0]
    let defined = statistics.filter { $0.gap[0] != nil }.count
    XCTAssertGreaterThan(defined, 150)
    XCTAssertLessThan(defined, 250)
    let intervals = BootstrapIntervals(statistics, level: 0.95)
    XCTAssertEqual(intervals.gap[0]?.resamples, defined)
  }

  func testComparingAModelWithItselfGivesZeroDifferences() throws {
    let split = randomSplit(images: 120, attributes: 4, seed: 3)
    let splits = EvaluationSplits(train: split, test: randomSplit(images: 90, attributes: 4, seed: 4))
    let evaluation = try FairnessEvaluation(
      splits, bootstrap: BootstrapOptions(resamples: 50, seed: 1), compared: (name: "same", splits: splits))
    let differences = try XCTUnwrap(evaluation.comparison?.differenceIntervals)
    XCTAssertEqual(differences.allGap, Interval(low: 0, high: 0, mean: 0, resamples: 50))
    XCTAssertTrue(differences.worst.allSatisfy { $0?.low == 0 && $0?.high == 0 })
    XCTAssertEqual(evaluation.comparison?.intervals?.allGap, evaluation.intervals?.allGap)
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
      first, bootstrap: BootstrapOptions(resamples: 40, seed: 8), compared: (name: "shifted", splits: second))
    let compared = try XCTUnwrap(evaluation.comparison)
    let statistics = Bootstrap.resample([evaluation.model.outcomes, compared.model.outcomes], count: 40, seed: 8)
    let differences = zip(statistics[0], statistics[1]).compactMap { pair -> Double? in
      guard let a = pair.0.allGap, let b = pair.1.allGap else { return nil }
      return a - b
    }
    let expected = percentileInterval(differences, level: 0.95)
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
    let interval = try XCTUnwrap(percentileInterval([10, 1, 3, 2, 4], level: 0.95))
    XCTAssertEqual(interval.low, 1.1, accuracy: 1e-12)
    XCTAssertEqual(interval.high, 9.4, accuracy: 1e-12)
    XCTAssertNil(percentileInterval([], level: 0.95))
  }

  func testMedianOfEvenAndOddCounts() {
    XCTAssertEqual(median([3, 1, 2]), 2)
    XCTAssertEqual(median([4, 1, 3, 2]), 2.5)
    XCTAssertNil(median([]))
  }
}

// Eight images and three attributes with every F1, gap, worst and rho worked out by hand.
import Fairness
import XCTest

final class HandComputedTests: XCTestCase {
  // image:      1  2  3  4  5  6  7  8
  // labels  a0: 1  1  0  0  1  0  1  0
  //         a1: 1  0  1  0  1  0  0  1
  //         a2: 0  0  1  0  0  1  0  0
  // predicted a0: 1  0  1  0  1  0  1  0
  //           a1: 1  0  1  1  0  0  0  1
  //           a2: 0  0  1  0  0  0  1  0
  let labels: [[Int]] = [
    [1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0],
  ]
  let predictions: [[Int]] = [
    [1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 1], [0, 1, 0],
  ]

  var summary: FairnessSummary {
    let outcomes = Outcomes(
      attributeCount: 3, imageCount: 8, labels: labels.flatMap { $0.map { $0 == 1 } },
      predictions: predictions.flatMap { $0.map { $0 == 1 } })
    let counts = PairCounts.count(outcomes)
    return FairnessSummary(counts, selection: PairSelection(counts, minimum: 1))
  }

  func testPairF1s() {
    let s = summary
    // (condition, task): F1 where the condition is true, where it is false.
    let expected: [(Int, Int, Double, Double)] = [
      // a0 true on 1,2,5,7. a1 there: TP 1 (img 1), FN 1 (img 5) -> 2/3; elsewhere (3,4,6,8):
      // TP 2 (3, 8), FP 1 (4) -> 4/5.
      (0, 1, 2.0 / 3, 4.0 / 5),
      // a2 where a0: no positive, FP 1 (img 7) -> 0; elsewhere TP 1 (3), FN 1 (6) -> 2/3.
      (0, 2, 0, 2.0 / 3),
      // a1 true on 1,3,5,8. a0 there: TP 2 (1, 5), FP 1 (3) -> 4/5; elsewhere (2,4,6,7):
      // TP 1 (7), FN 1 (2) -> 2/3.
      (1, 0, 4.0 / 5, 2.0 / 3),
      // a2 where a1: TP 1 (3) -> 1; elsewhere FP 1 (7), FN 1 (6) -> 0.
      (1, 2, 1, 0),
      // a2 true on 3,6. a0 there: FP 1 (3) -> 0; elsewhere (1,2,4,5,7,8): TP 3 (1,5,7), FN 1 (2)
      // -> 6/7.
      (2, 0, 0, 6.0 / 7),
      // a1 where a2: TP 1 (3) -> 1; elsewhere TP 2 (1, 8), FP 1 (4), FN 1 (5) -> 4/6.
      (2, 1, 1, 2.0 / 3),
    ]
    // Ratios of counts up to 8 in Double: a few ulps (~1e-16) from the fractions, while distinct
    // fractions of such counts differ by more than 1/64.
    for (condition, task, given, givenNot) in expected {
      let index = condition * 3 + task
      XCTAssertEqual(s.f1GivenCondition[index]!, given, accuracy: 1e-12, "F1(a\(task)|a\(condition))")
      XCTAssertEqual(s.f1GivenNotCondition[index]!, givenNot, accuracy: 1e-12, "F1(a\(task)|-a\(condition))")
    }
    // a2 is never true where a0 is, and a0 never where a2 is: those two pairs are undefined.
    XCTAssertEqual(s.selection.undefined, 2)
    XCTAssertNil(s.pairGap[0 * 3 + 2])
    XCTAssertNil(s.pairGap[2 * 3 + 0])
  }

  func testGapWorstRhoAndAll() {
    let s = summary
    // Means and medians of ratios of counts in Double: a few ulps from the fractions.
    // a0's only defined pair is a1: gap(a0) = |2/3 - 4/5| = 2/15; worst(a0) = 2/3. (Counting the
    // undefined pair (a2|a0) as F1 0 would give 2/5 and 1/3.)
    XCTAssertEqual(s.gap[0]!, 2.0 / 15, accuracy: 1e-12)
    XCTAssertEqual(s.worst[0]!, 2.0 / 3, accuracy: 1e-12)
    // gap(a1) = (2/15 + 1) / 2 = 17/30; worst(a1) = (2/3 + 0) / 2.
    XCTAssertEqual(s.gap[1]!, 17.0 / 30, accuracy: 1e-12)
    XCTAssertEqual(s.worst[1]!, 1.0 / 3, accuracy: 1e-12)
    // a2's only defined pair is a1: gap(a2) = |1 - 2/3| = 1/3; worst(a2) = 2/3.
    XCTAssertEqual(s.gap[2]!, 1.0 / 3, accuracy: 1e-12)
    XCTAssertEqual(s.worst[2]!, 2.0 / 3, accuracy: 1e-12)
    // all: the medians of (2/15, 17/30, 1/3) and (2/3, 1/3, 2/3).
    XCTAssertEqual(s.allGap!, 1.0 / 3, accuracy: 1e-12)
    XCTAssertEqual(s.allWorst!, 2.0 / 3, accuracy: 1e-12)
    XCTAssertEqual(s.selection.usedPerCondition, [1, 2, 1])
    // rho: a0 and a1 are true on 4 of 8 images, a2 on 2 of 8.
    XCTAssertEqual(s.rho, [0.5, 0.5, 0.25])
    XCTAssertEqual(s.conditionCounts, [4, 4, 2])
  }

  func testThresholdSweepWithTiedScores() {
    // Distinct scores from the top: 0.9 -> TP 1, predicted 1, F1 = 2/(1+3) = 0.5; 0.8 -> 2/5;
    // 0.6 -> 4/6; 0.4 (a positive and a negative tie) -> TP 3, predicted 5, 6/8 = 0.75;
    // 0.1 -> 6/9; 0.05 -> 6/10. Best: 0.4.
    let threshold = Thresholds.optimal(positiveScores: [0.9, 0.6, 0.4], negativeScores: [0.8, 0.4, 0.1, 0.05])
    XCTAssertEqual(threshold.value, 0.4)
    XCTAssertEqual(threshold.trainF1, 0.75)
    XCTAssertTrue(threshold.predicts(0.4), "a score equal to the threshold is positive")
    XCTAssertFalse(threshold.predicts(0.39))
  }

  func testEqualF1PrefersTheHigherThreshold() {
    // 0.9 -> TP 1, predicted 1: 2/3; 0.7 -> 2/4; 0.6 -> 2/5; 0.5 -> TP 2, predicted 4: 4/6 = 2/3.
    let threshold = Thresholds.optimal(positiveScores: [0.9, 0.5], negativeScores: [0.7, 0.6])
    XCTAssertEqual(threshold.value, 0.9)
    // 2 TP / (2 TP + FP + FN) in Double: within an ulp (1.1e-16) of 2/3.
    XCTAssertEqual(threshold.trainF1, 2.0 / 3, accuracy: 1e-15)
  }

  func testThresholdsPerAttributeFromASplit() {
    // a0 positives score 0.8 and 0.3, negatives 0.5: best 0.3 (TP 2, predicted 3: 4/5) over
    // 0.8 (2/3). a1 has no positive: +infinity.
    let split = LabeledScores(
      attributeNames: ["a0", "a1"], images: ["1", "2", "3"], labels: [true, false, false, false, true, false],
      scores: [0.8, 0.1, 0.5, 0.2, 0.3, 0.3])
    let thresholds = Thresholds.calibrate(split)
    XCTAssertEqual(thresholds[0].value, 0.3)
    // One Double division: within an ulp of 0.8.
    XCTAssertEqual(thresholds[0].trainF1, 0.8, accuracy: 1e-15)
    XCTAssertEqual(thresholds[1].value, .infinity)
  }
}

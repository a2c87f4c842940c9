// Thresholds and every pair F1 checked against direct computations written here from the
// definitions, on random labels and biased scores.
import Fairness
import XCTest

/// A test-only generator (a 64-bit LCG), so the data do not come from the library's generator.
struct TestGenerator {
  var state: UInt64

  mutating func uniform() -> Double {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return Double(state >> 11) / Double(UInt64(1) << 53)
  }
}

/// Labels with rates from 3% to 60%, the second attribute correlated with the first, and scores
/// that are informative, quantised (so ties occur) and shifted for images with attribute 0.
func randomSplit(images: Int, attributes: Int, seed: UInt64) -> LabeledScores {
  var generator = TestGenerator(state: seed)
  var labels: [Bool] = []
  var scores: [Double] = []
  for _ in 0..<images {
    var first = false
    for attribute in 0..<attributes {
      let rate = 0.03 + 0.57 * Double(attribute) / Double(max(attributes - 1, 1))
      let label = attribute == 1 && first ? generator.uniform() < 0.8 : generator.uniform() < rate
      if attribute == 0 { first = label }
      let score = (label ? 0.6 : 0.0) + generator.uniform() + (first ? 0.3 : 0)
      labels.append(label)
      scores.append((score * 20).rounded() / 20)
    }
  }
  return LabeledScores(
    attributeNames: (0..<attributes).map { "a\($0)" }, images: (0..<images).map { "\($0).jpg" }, labels: labels,
    scores: scores)
}

/// F1 straight from its definition, 2 TP / (2 TP + FP + FN), over the images `keep` selects.
func directF1(labels: [Bool], predictions: [Bool], attributes: Int, task: Int, keep: (Int) -> Bool) -> Double {
  var truePositives = 0
  var falsePositives = 0
  var falseNegatives = 0
  for image in 0..<(labels.count / attributes) where keep(image) {
    let label = labels[image * attributes + task]
    let prediction = predictions[image * attributes + task]
    if label && prediction { truePositives += 1 }
    if !label && prediction { falsePositives += 1 }
    if label && !prediction { falseNegatives += 1 }
  }
  let denominator = 2 * truePositives + falsePositives + falseNegatives
  return denominator == 0 ? 0 : 2 * Double(truePositives) / Double(denominator)
}

final class IndependentMetricsTests: XCTestCase {
  let attributes = 6
  lazy var train = randomSplit(images: 700, attributes: attributes, seed: 11)
  lazy var test = randomSplit(images: 500, attributes: attributes, seed: 12)

  func testThresholdsMaximiseTrainF1AndPreferTheHighestOnTies() throws {
    let thresholds = Thresholds.calibrate(train)
    for attribute in 0..<attributes {
      let labels = (0..<train.imageCount).map { train.labels[$0 * attributes + attribute] }
      let scores = (0..<train.imageCount).map { train.scores[$0 * attributes + attribute] }
      var candidates = Array(Set(scores)).sorted(by: >)
      candidates.insert(.infinity, at: 0)
      let f1s = candidates.map { candidate in
        directF1(labels: labels, predictions: scores.map { $0 >= candidate }, attributes: 1, task: 0) { _ in true }
      }
      let best = try XCTUnwrap(f1s.max())
      let chosen = thresholds[attribute]
      // F1s are ratios of counts, in Double on both sides: equal to a few ulps (~1e-16), and
      // means of a few of them too; distinct F1s of these counts differ by far more than 1e-12.
      XCTAssertEqual(chosen.trainF1, best, accuracy: 1e-12, "attribute \(attribute)")
      let index = try XCTUnwrap(candidates.firstIndex(of: chosen.value), "threshold is a train score")
      XCTAssertEqual(f1s[index], best, accuracy: 1e-12)
      XCTAssertFalse(f1s[..<index].contains { abs($0 - best) < 1e-12 }, "a higher threshold has the same F1")
    }
  }

  func testEveryPairF1MatchesTheDefinition() {
    let thresholds = Thresholds.calibrate(train)
    let outcomes = Outcomes(test, thresholds: thresholds)
    let predictions = (0..<test.scores.count).map { test.scores[$0] >= thresholds[$0 % attributes].value }
    XCTAssertEqual(outcomes.predictions, predictions)
    let counts = PairCounts.count(outcomes)
    let summary = FairnessSummary(counts, selection: PairSelection(counts, minimum: 1))
    XCTAssertEqual(summary.selection.used, attributes * (attributes - 1), "every pair has positives on both sides here")
    var checked = 0
    for condition in 0..<attributes {
      var gaps: [Double] = []
      var worsts: [Double] = []
      for task in 0..<attributes where task != condition {
        let inside = directF1(labels: test.labels, predictions: predictions, attributes: attributes, task: task) {
          self.test.labels[$0 * self.attributes + condition]
        }
        let outside = directF1(labels: test.labels, predictions: predictions, attributes: attributes, task: task) {
          !self.test.labels[$0 * self.attributes + condition]
        }
        let index = condition * attributes + task
        // Ratios of counts in Double, computed two ways: a few ulps apart.
        XCTAssertEqual(summary.f1GivenCondition[index]!, inside, accuracy: 1e-12)
        XCTAssertEqual(summary.f1GivenNotCondition[index]!, outside, accuracy: 1e-12)
        XCTAssertEqual(summary.pairGap[index]!, abs(inside - outside), accuracy: 1e-12)
        XCTAssertEqual(summary.pairWorst[index]!, min(inside, outside), accuracy: 1e-12)
        gaps.append(abs(inside - outside))
        worsts.append(min(inside, outside))
        checked += 1
      }
      XCTAssertNil(summary.f1GivenCondition[condition * attributes + condition], "no pair on the diagonal")
      // Means of a few such ratios: a few ulps.
      XCTAssertEqual(summary.gap[condition]!, gaps.reduce(0, +) / Double(gaps.count), accuracy: 1e-12)
      XCTAssertEqual(summary.worst[condition]!, worsts.reduce(0, +) / Double(worsts.count), accuracy: 1e-12)
      let positives = (0..<test.imageCount).filter { test.labels[$0 * attributes + condition] }.count
      XCTAssertEqual(
        summary.rho[condition], Double(min(positives, test.imageCount - positives)) / Double(test.imageCount))
    }
    XCTAssertEqual(checked, attributes * (attributes - 1))
    let gaps = summary.gap.map { $0! }.sorted()
    // The same two Doubles averaged: at most one rounding (1.1e-16 of values below 1) apart.
    XCTAssertEqual(summary.allGap!, (gaps[2] + gaps[3]) / 2, accuracy: 1e-15, "median of six")
  }

  func testWeightedBootstrapCountsMatchPerPairCountsOfTheSameResamples() {
    let outcomes = Outcomes(test, thresholds: Thresholds.calibrate(train))
    let fast = Bootstrap.resample([outcomes], count: 7, seed: 5, lanes: 3)[0]
    let baseline = PerPairBaseline.resample(outcomes, count: 7, seed: 5)
    XCTAssertEqual(fast.count, 7)
    for (first, second) in zip(fast, baseline) {
      XCTAssertEqual(first.gap, second.gap)
      XCTAssertEqual(first.worst, second.worst)
      XCTAssertEqual(first.allGap, second.allGap)
    }
    XCTAssertNotEqual(fast[0].gap, fast[1].gap, "resamples differ")
    let again = Bootstrap.resample([outcomes], count: 7, seed: 5, lanes: 64)[0]
    XCTAssertEqual(again.map(\.gap), fast.map(\.gap), "the same seed gives the same resamples whatever the block size")
  }

  func testPopcountCountsMatchPerPairCountsOnAllImages() {
    let outcomes = Outcomes(test, thresholds: Thresholds.calibrate(train))
    XCTAssertEqual(PairCounts.count(outcomes), PerPairBaseline.counts(outcomes, images: Array(0..<test.imageCount)))
  }
}

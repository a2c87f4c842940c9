// Mean F1 over attributes: a hand-worked value, the pair counts' and the resamples' mean F1 held
// to the image-by-image definition, and paired differences that separate a damaged copy and are
// exactly zero for a model compared with itself.
import Fairness
import XCTest

final class MeanF1Tests: XCTestCase {
  // Two attributes, four images.
  // labels a0: 1 1 0 0   predicted a0: 1 0 1 0  -> tp 1, predicted 2, positives 2: F1 0.5
  // labels a1: 1 0 1 0   predicted a1: 1 0 1 0  -> F1 1
  let outcomes = Outcomes(
    attributeCount: 2, imageCount: 4,
    labels: [true, true, true, false, false, true, false, false],
    predictions: [true, true, false, false, true, true, false, false])

  /// Mean F1s are Double means of ratios of counts: two ways of computing one agree to a few
  /// ulps (~1e-16), so 1e-12 throughout.
  func testHandWorkedValue() {
    XCTAssertEqual(MeanF1.value(outcomes), 0.75, accuracy: 1e-12)
  }

  func testPairCountsAndResamplesAgreeWithTheImageByImageDefinition() {
    let scores = SyntheticScores.split(imageCount: 400, seed: 2)
    let model = Outcomes(scores, thresholds: Thresholds.calibrate(scores))
    let counts = PairCounts.count(model)
    // The same Double means of ratios of counts, computed two ways (as above).
    XCTAssertEqual(FairnessSummary(counts).meanF1, MeanF1.value(model), accuracy: 1e-12)
    let fast = Bootstrap.resample([model], count: 30, seed: 7)[0].map(\.meanF1)
    let plain = MeanF1.resampled([model], count: 30, seed: 7)[0]
    for (a, b) in zip(fast, plain) { XCTAssertEqual(a, b, accuracy: 1e-12) }
    XCTAssertNotEqual(fast[0], fast[1], "resamples differ")
  }

  func testPairedMeanF1SeparatesADamagedCopyAndNotItself() {
    let scores = SyntheticScores.split(imageCount: 400, seed: 2)
    let model = ModelEvaluation(EvaluationSplits(train: scores, test: scores))
    // A worse model: every prediction of attribute 0 flipped.
    var flipped = model.outcomes.predictions
    for image in 0..<model.outcomes.imageCount { flipped[image * model.outcomes.attributeCount] = !flipped[image * model.outcomes.attributeCount] }
    let worse = Outcomes(attributeCount: model.outcomes.attributeCount, imageCount: model.outcomes.imageCount, labels: model.outcomes.labels, predictions: flipped)
    let options = BootstrapOptions(resamples: 200, seed: 5)
    let selection = model.summary.selection
    let draws = Bootstrap.resample([model.outcomes, worse], count: 200, seed: 5, selection: selection)
    let estimate = MeanF1.value(model.outcomes) - MeanF1.value(worse)
    let first = Resampled(estimate: ResampleStatistic(model.summary), resamples: draws[0], selection: selection)
    let second = Resampled(estimate: ResampleStatistic(FairnessSummary(PairCounts.count(worse), selection: selection)), resamples: draws[1], selection: selection)
    let difference = BootstrapIntervals(difference: first, second, level: options.level)
    let paired = zip(draws[0], draws[1]).map { $0.meanF1 - $1.meanF1 }
    // Sums of 200 Doubles below 1, in other orders: ~1e-14 apart.
    XCTAssertEqual(difference.meanF1?.estimate ?? 0, 2 * estimate - paired.reduce(0, +) / 200, accuracy: 1e-12)
    // Any positive low end: the flip costs every paired resample about the same, so the
    // interval excludes 0 (its low end is 0.017 here).
    XCTAssertGreaterThan(try XCTUnwrap(difference.meanF1).low, 0, "a paired difference should separate a model from its damaged copy")
    let same = PairedComparison(model, model, options: options)
    XCTAssertEqual(same.meanF1?.low, 0)
    XCTAssertEqual(same.meanF1?.high, 0)
  }
}

// Mean F1 over attributes and its bootstrap: a hand-worked value, intervals that contain it, and
// a paired difference that is exactly zero for a model compared with itself.
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

  func testHandWorkedValue() {
    XCTAssertEqual(MeanF1.value(outcomes), 0.75, accuracy: 1e-12)
  }

  func testIntervalsContainTheValueAndASelfComparisonIsZero() {
    let scores = SyntheticScores.split(imageCount: 400, seed: 2)
    let thresholds = Thresholds.calibrate(scores)
    let model = Outcomes(scores, thresholds: thresholds)
    // A worse model: every prediction of attribute 0 flipped.
    var flipped = model.predictions
    for image in 0..<model.imageCount { flipped[image * model.attributeCount] = !flipped[image * model.attributeCount] }
    let worse = Outcomes(attributeCount: model.attributeCount, imageCount: model.imageCount, labels: model.labels, predictions: flipped)
    let result = MeanF1.intervals([model, worse], options: BootstrapOptions(resamples: 200, seed: 5))
    for (value, interval) in zip(result.values, result.intervals) {
      let i = try! XCTUnwrap(interval)
      XCTAssertLessThan(i.low, value)
      XCTAssertGreaterThan(i.high, value)
    }
    XCTAssertGreaterThan(result.values[0], result.values[1])
    XCTAssertGreaterThan(result.difference!.low, 0, "a paired difference should separate a model from its damaged copy")
    let same = MeanF1.intervals([model, model], options: BootstrapOptions(resamples: 50, seed: 5))
    XCTAssertEqual(same.difference!.low, 0)
    XCTAssertEqual(same.difference!.high, 0)
  }
}

// fairness.json parses as JSON and says what the numbers are: null thresholds, the pairs used and
// left out, pair matrices, intervals.
import Fairness
import Foundation
import XCTest

final class DocumentTests: XCTestCase {
  func testDocumentHoldsThresholdsMetricsPairsAndIntervals() throws {
    // a2 has no train positive; in the test split a2 is never true either.
    let names = ["a0", "a1", "a2"]
    let train = LabeledScores(
      attributeNames: names, images: ["1", "2", "3", "4"],
      labels: [true, false, false, false, true, false, true, true, false, false, false, false],
      scores: [0.9, 0.2, 0.5, 0.1, 0.8, 0.4, 0.7, 0.6, 0.3, 0.2, 0.1, 0.9])
    let test = LabeledScores(
      attributeNames: names, images: ["5", "6", "7", "8"],
      labels: [true, false, false, false, true, false, true, true, false, false, false, false],
      scores: [0.95, 0.1, 0.2, 0.3, 0.9, 0.1, 0.1, 0.85, 0.1, 0.2, 0.1, 0.3])
    let evaluation = try FairnessEvaluation(
      EvaluationSplits(train: train, test: test), bootstrap: BootstrapOptions(resamples: 30, seed: 2), minimumSupport: 1)
    let object = try XCTUnwrap(JSONSerialization.jsonObject(with: evaluation.document()) as? [String: Any])
    XCTAssertEqual(object["attributes"] as? [String], names)
    let thresholds = try XCTUnwrap(object["thresholds"] as? [Any])
    XCTAssertEqual(thresholds.count, 3)
    XCTAssertTrue(thresholds[2] is NSNull, "no train positive: +infinity, written as null")
    XCTAssertEqual(object["test_images"] as? Int, 4)
    let perAttribute = try XCTUnwrap(object["per_attribute"] as? [[String: Any]])
    XCTAssertEqual(perAttribute.map { $0["attribute"] as? String }, names)
    XCTAssertTrue(perAttribute[2]["gap"] is NSNull, "a2 is never true in the test split")
    XCTAssertEqual(perAttribute[0]["rho"] as? Double, 0.5)
    XCTAssertNotNil(perAttribute[0]["gap_interval"] as? [String: Any])
    let pairs = try XCTUnwrap(object["pairs"] as? [String: Any])
    let given = try XCTUnwrap(pairs["f1_given_c"] as? [[Any]])
    XCTAssertEqual(given.count, 3)
    XCTAssertTrue(given[0][0] is NSNull, "diagonal")
    // a2 is never true: its pairs as a task are undefined, not F1 0.
    let selection = try XCTUnwrap(object["pair_selection"] as? [String: Any])
    XCTAssertEqual(selection["min_support"] as? Int, 1)
    XCTAssertEqual(selection["undefined"] as? Int, 2)
    XCTAssertEqual(selection["used"] as? Int, 2)
    XCTAssertEqual(perAttribute[0]["pairs_used"] as? Int, 1)
    let support = try XCTUnwrap(pairs["support"] as? [[Int]])
    XCTAssertEqual(support[0][2], 0)
    XCTAssertNotNil((perAttribute[0]["gap_interval"] as? [String: Any])?["estimate"] as? Double)
    XCTAssertEqual((object["conventions"] as? [String])?.count, FairnessEvaluation.conventions.count)
    XCTAssertEqual((object["bootstrap"] as? [String: Any])?["resamples"] as? Int, 30)
  }
}

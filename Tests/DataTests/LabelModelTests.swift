// Synthetic labels have CelebA's statistics: marginals, the strong Male correlations, all pairs.
import CelebAFormat
import XCTest

@testable import Data

final class LabelModelTests: XCTestCase {
  func testSixteenThousandRowsHaveCelebAsMarginalsAndCorrelations() {
    let rows = 16_000
    let n = CelebA.attributeCount
    let labels = CelebALabelModel.celebA.sample(count: rows, seed: 7)
    let statistics = LabelStatistics(labels: labels, attributeCount: n)
    var worstMarginal = (error: 0.0, attribute: 0)
    for a in 0..<n {
      let p = CelebA.positiveRates[a]
      let error = abs(statistics.rates[a] - p)
      if error > worstMarginal.error { worstMarginal = (error, a) }
      // The model's marginals are CelebA's (200,000 rows come within 2.7 standard errors), so
      // this is sampling: 4.5 binomial standard errors, exceeded with probability 7e-6 per
      // attribute (3e-4 for any of the 40).
      XCTAssertLessThan(error, 4.5 * (p * (1 - p) / Double(rows)).squareRoot(), "marginal of \(CelebA.attributeNames[a])")
    }
    let male = CelebA.index(of: "Male")!
    // A correlation of 16,000 rows has a standard error of about 1/sqrt(16,000) = 0.008, and the
    // model's own correlations for these pairs are within 0.002 of CelebA's: 0.05 is 6 of them.
    for name in ["Wearing_Lipstick", "No_Beard", "Heavy_Makeup"] {
      let a = CelebA.index(of: name)!
      let measured = statistics.correlation(male, a)
      XCTAssertEqual(measured, CelebA.correlation(male, a), accuracy: 0.05, "Male and \(name)")
      print(String(format: "Male x %@: %.3f (CelebA %.3f)", name, measured, CelebA.correlation(male, a)))
    }
    var worst = (error: 0.0, a: 0, b: 0)
    var total = 0.0
    for a in 0..<n {
      for b in 0..<a {
        let error = abs(statistics.correlation(a, b) - CelebA.correlation(a, b))
        total += error
        if error > worst.error { worst = (error, a, b) }
      }
    }
    print(
      String(
        format:
          "%d rows: worst marginal error %.4f (%@); correlations over 780 pairs: mean error %.4f, worst %.3f (%@ x %@: %.3f, CelebA %.3f)",
        rows, worstMarginal.error, CelebA.attributeNames[worstMarginal.attribute], total / 780, worst.error,
        CelebA.attributeNames[worst.a], CelebA.attributeNames[worst.b], statistics.correlation(worst.a, worst.b),
        CelebA.correlation(worst.a, worst.b)))
    // The model's own correlations differ from CelebA's by up to 0.067 (its worst pair, measured
    // on 200,000 rows); 16,000 rows add sampling error, under 4.5 / sqrt(16,000) = 0.036 on any
    // of the 780 pairs. (Over 30 seeds the worst pair came out 0.06-0.10.)
    XCTAssertLessThan(worst.error, 0.11)
  }

  func testRowsDoNotDependOnTheRowCount() {
    let model = CelebALabelModel.celebA
    XCTAssertEqual(Array(model.sample(count: 300, seed: 3).prefix(100 * 40)), model.sample(count: 100, seed: 3))
    XCTAssertNotEqual(model.sample(count: 100, seed: 3), model.sample(count: 100, seed: 4))
  }
}

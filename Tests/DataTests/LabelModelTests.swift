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
      let error = abs(statistics.rates[a] - CelebA.positiveRates[a])
      if error > worstMarginal.error { worstMarginal = (error, a) }
      XCTAssertLessThan(error, 0.01, "marginal of \(CelebA.attributeNames[a])")
    }
    let male = CelebA.index(of: "Male")!
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
    XCTAssertLessThan(worst.error, 0.1)
  }

  func testRowsDoNotDependOnTheRowCount() {
    let model = CelebALabelModel.celebA
    XCTAssertEqual(Array(model.sample(count: 300, seed: 3).prefix(100 * 40)), model.sample(count: 100, seed: 3))
    XCTAssertNotEqual(model.sample(count: 100, seed: 3), model.sample(count: 100, seed: 4))
  }
}

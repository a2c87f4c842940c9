// The intervals' coverage by simulation (a fast version of docs/statistics.md's table): test sets
// drawn from a score model whose population values are exact, and how often each nominal 95%
// interval holds the population value.
import Fairness
import XCTest

final class CoverageTests: XCTestCase {
  func testPopulationValuesOfTheScoreModelMatchALargeSample() {
    // The exact population F1s against a sample of 200,000 images: the simulation's truth is
    // what the sampler draws from.
    let model = ScoreModel.celebALike
    let outcomes = model.draw(images: 200_000, seed: 3)[0]
    let counts = PairCounts.count(outcomes)
    let selection = PairSelection(counts, minimum: 1)
    let sample = FairnessSummary(counts, selection: selection)
    let truth = model.population(model: 0, selection: selection)
    XCTAssertEqual(sample.meanF1, truth.meanF1, accuracy: 0.005)
    XCTAssertEqual(sample.worst[5]!, truth.worst[5]!, accuracy: 0.01)
    XCTAssertEqual(sample.gap[5]!, truth.gap[5]!, accuracy: 0.01)
    let marginal = Double(counts.imagesWhere(0)) / 200_000
    XCTAssertEqual(marginal, 0.02, accuracy: 0.003, "the rarest attribute is true on about 2% of the images")
  }

  func testBiasCorrectedBasicIntervalsCoverAtTheirNominalRate() {
    let tallies = CoverageSimulation.run(draws: 120, images: 8000, resamples: 150, seed: 11)
    print(CoverageSimulation.markdown(tallies, level: 0.95))
    let basic = tallies[.basic]!
    for name in ["all gap", "all worst", "mean F1", "gap, common c (42%)", "worst, common c (42%)", "difference: all gap", "difference: all worst", "difference: mean F1"] {
      let tally = basic[name]!
      XCTAssertGreaterThan(tally.trials, 100, name)
      XCTAssertGreaterThanOrEqual(tally.rate, 0.88, "\(name): basic intervals cover \(tally.rate)")
    }
    // The percentile interval around a gap of a rare condition misses its population value far
    // more often: the upward bias of an absolute difference is what the correction removes.
    let percentile = tallies[.percentile]!
    XCTAssertLessThan(percentile["gap, rare c (9%)"]!.rate + 0.1, basic["gap, rare c (9%)"]!.rate)
  }
}

// The representation monitor's kNN vote against hand-computed values, and its figure on
// features that carry the labels against features that do not.
import Fairness
import Foundation
import Support
@testable import Training
import XCTest

final class MonitorTests: XCTestCase {
  func testVotesAreTheWeightedShareOfPositiveNeighbours() {
    // Bank rows 0-2, query row 3; one attribute, positive for bank rows 0 and 2.
    let c = Float(cos(0.3)), s = Float(sin(0.3))
    let features: [Float] = [
      1, 0,  // bank 0
      0, 1,  // bank 1
      -1, 0,  // bank 2
      2 * c, 2 * s,  // query: 0.3 rad from bank 0, 1.27 rad from bank 1, far from bank 2 (length does not count)
    ]
    let labels = [[true], [false], [true], [false]]
    let t: Float = 0.5
    let votes = RepresentationMonitor.votes(features: features, width: 2, bankCount: 3, labels: labels, neighbours: 2, temperature: t)
    // The query's two nearest: bank 0 (cosine c, positive) and bank 1 (cosine s, negative).
    let w0 = exp((c - 1) / t), w1 = exp((s - 1) / t)
    // fp32 votes in [0, 1] (ulp <= 1.2e-7) from a few exponentials and sums: 1e-6 is ~10 ulps.
    XCTAssertEqual(votes[3], w0 / (w0 + w1), accuracy: 1e-6)
    // Bank 0 without itself: bank 1 (cosine 0, negative) and bank 2 (cosine -1, positive).
    let v1 = exp(-1 / t), v2 = exp(-2 / t)
    XCTAssertEqual(votes[0], v2 / (v1 + v2), accuracy: 1e-6)
    // Bank 1: banks 0 and 2 are equally near (cosine 0), both positive.
    XCTAssertEqual(votes[1], 1, accuracy: 1e-6)
    // With one neighbour, the vote is the nearest label.
    let nearest = RepresentationMonitor.votes(features: features, width: 2, bankCount: 3, labels: labels, neighbours: 1, temperature: t)
    XCTAssertEqual(nearest[3], 1)
  }

  func testFeaturesThatCarryTheLabelsScoreAboveNoiseFeatures() {
    // 300 bank and 150 query images, 4 attributes; informative features are the labels plus
    // noise, uninformative ones noise only.
    var rng = SplitMix64(seed: 5)
    let rows = 450, bank = 300, attributes = 4, width = 16
    let labels = (0..<rows).map { _ in (0..<attributes).map { _ in rng.uniform() < 0.3 } }
    func features(informative: Bool) -> [Float] {
      (0..<rows).flatMap { r in
        (0..<width).map { j in (informative && j < attributes && labels[r][j] ? 1.5 : 0) + rng.normal() * 0.5 }
      }
    }
    func meanF1(_ f: [Float]) -> Double {
      let votes = RepresentationMonitor.votes(features: f, width: width, bankCount: bank, labels: labels, neighbours: 20, temperature: 0.07)
      func labeled(_ range: Range<Int>) -> LabeledScores {
        LabeledScores(
          attributeNames: (0..<attributes).map { "a\($0)" }, images: range.map { "\($0)" }, labels: range.flatMap { labels[$0] },
          scores: votes[(range.lowerBound * attributes)..<(range.upperBound * attributes)].map(Double.init))
      }
      return Evaluation.meanF1(train: labeled(0..<bank), evaluated: labeled(bank..<rows))
    }
    let good = meanF1(features(informative: true))
    let noise = meanF1(features(informative: false))
    // Noise votes are no better than calling every image positive (F1 = 2p / (1 + p) = 0.46).
    // Over 40 seeds of this set-up, noise scored 0.40-0.50 and informative features 0.77-0.86
    // (0.47 and 0.84 with this seed): each bound lies outside the other's range.
    XCTAssertLessThan(noise, 0.55)
    XCTAssertGreaterThan(good, 0.75)
  }
}

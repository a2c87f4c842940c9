// Population sums of a BatchNorm's input over several batches (bn-recal): pooled and
// group-balanced statistics against a direct two-pass computation over all the values.
import NN
import Support
import Tensors
import XCTest

final class PopulationStatisticsTests: XCTestCase {
  /// Three batches of 2x3x3x4 inputs, each image in group 0 or 1 (group 1 shifted and wider, and
  /// rarer), through a training-mode BatchNorm with population sums attached.
  func testSumsOverBatchesGiveThePooledAndTheMixtureStatistics() throws {
    let c = 4, h = 3, w = 3
    let registry = ParameterRegistry()
    let bn = BatchNorm2d(registry, name: "bn", channels: c)
    registry.allocate()
    bn.initialize()
    let groups = BatchGroups()
    let pooled = PopulationSums(channels: c)
    let split = PopulationSums(channels: c, groups: groups, groupCount: 2)
    var rng = SplitMix64(seed: 21)
    // values[g][ch]: every value seen, for the direct computation.
    var values = [[[Double]]](repeating: [[Double]](repeating: [], count: c), count: 2)
    for batch in [3, 5, 2] {
      let x = Tensor(shape: [batch, h, w, c])
      groups.ofImage = (0..<batch).map { $0 % 3 == 1 ? 1 : 0 }
      for n in 0..<batch {
        let g = groups.ofImage[n]
        for p in 0..<(h * w) {
          for ch in 0..<c {
            let v = Float(g == 1 ? 3 + 2 * rng.normal() : 0.5 * Float(ch) + rng.normal())
            x.data[(n * h * w + p) * c + ch] = v
            values[g][ch].append(Double(v))
          }
        }
      }
      // One layer can carry one set of sums; the pooled run and the grouped run are two forwards.
      bn.population = pooled
      _ = bn.forward(FeatureMap(data: x.data, batch: batch, height: h, width: w, channels: c))
      bn.population = split
      _ = bn.forward(FeatureMap(data: x.data, batch: batch, height: h, width: w, channels: c))
    }
    XCTAssertEqual(values[1][0].count, 4 * h * w, "group 1 has 4 of the 10 images")
    func meanVariance(_ v: [Double]) -> (Double, Double) {
      let m = v.reduce(0, +) / Double(v.count)
      return (m, v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count))
    }
    let p = try XCTUnwrap(pooled.statistics(balanced: false))
    let s = try XCTUnwrap(split.statistics(balanced: false))
    let b = try XCTUnwrap(split.statistics(balanced: true))
    for ch in 0..<c {
      let (m, v) = meanVariance(values[0][ch] + values[1][ch])
      // The pooled sums are BatchNorm's own: fp32 over a batch's at most 45 rows (values of mean
      // up to 3), then Double. That random walk puts ~2^-24 * 45^1.5 * 3 / 3 ~ 2e-5 on a batch's
      // sum, ~3e-7 on the mean of 90 and a relative ~1e-6 on the variance (the group runs and
      // the mixture are summed in Double: ~1e-15).
      XCTAssertEqual(p.mean[ch], m, accuracy: 1e-6)
      XCTAssertEqual(p.variance[ch], v, accuracy: 1e-5 * v)
      XCTAssertEqual(s.mean[ch], m, accuracy: 1e-6, "the groups pooled are the pool")
      XCTAssertEqual(s.variance[ch], v, accuracy: 1e-5 * v)
      // The equal-weight mixture: the mean of the group means; the mean of the group variances
      // plus the variance of the group means.
      let (m0, v0) = meanVariance(values[0][ch])
      let (m1, v1) = meanVariance(values[1][ch])
      let mixtureMean = (m0 + m1) / 2
      let mixtureVariance = (v0 + v1) / 2 + (m0 - m1) * (m0 - m1) / 4
      XCTAssertEqual(b.mean[ch], mixtureMean, accuracy: 1e-6)
      XCTAssertEqual(b.variance[ch], mixtureVariance, accuracy: 1e-5 * mixtureVariance)
      // 0.1 x (group 1's mean - group 0's): 0.15-0.3 by construction, 0.098 at the least in these
      // draws (the group means are of 36 values); 0.05 only has to tell it from 0.
      XCTAssertGreaterThan(abs(b.mean[ch] - m), 0.05, "the rarer group weighs more in the mixture than in the pool")
    }
    XCTAssertEqual(split.count(group: 0) + split.count(group: 1), Double(10 * h * w))
    XCTAssertNil(PopulationSums(channels: c, groups: groups, groupCount: 2).statistics(balanced: true), "an empty group has no statistics")
  }
}

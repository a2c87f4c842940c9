// Intervals for the gap and the worst that allow for the bias the bootstrap's correction leaves:
// the default (`IntervalMethod.bounded`), checked by simulation in docs/statistics.md.
//
// A pair's gap is |d| for d = F1(t|c) - F1(t|-c), estimated by |d̂|. With d̂ about normal around
// d with standard deviation σ (the spread of d̂ over the resamples), the bias-corrected estimate
// 2|d̂| - mean(|d̂*|) has expectation |d| + σ r(d/σ), where
//
//   r(u) = 2 E|u + Z| - √2 E|u/√2 + Z| - |u|,   Z standard normal, E|u + Z| = 2φ(u) + u(2Φ(u) - 1),
//
// is the bias the correction leaves. Numerically, -0.0935 <= r(u) <= 0.4674 (the top at u = 0:
// where the subgroups' F1s agree, the correction takes off only 40% of the bias), |r'(u)| <= 1
// and |r(u) - u r'(u)| <= 0.4674. So gap(c), a mean over c's pairs, lies within
// [E g̃ - 0.4674 σ̄, E g̃ + 0.0935 σ̄] of the mean g̃ of the corrected pairs, σ̄ the mean σ of c's
// pairs; worst = (F1(t|c) + F1(t|-c))/2 - gap/2 takes half of that, the other way. An interval
// is that range widened by z standard deviations of the resamples on each side. "all", a median
// over c, is bounded by the medians of the ends (the median is monotone in every coordinate).
//
// A paired difference of two models' gaps has the difference of their leftover biases, which
// is bounded twice: by the two ranges, and by how far the models' pairs are apart (f(d, σ) =
// σ r(d/σ) moves by at most |Δd| + 0.4674 |Δσ|), which is 0 for a model compared with itself.
// For "all", the median moves by at most 2 max_c |g̃_A(c) - g̃_B(c)| plus the largest per-c bound.
import CelebAFormat
import Foundation

struct BiasBounds {
  /// r's range and the Lipschitz constants of f(d, σ) = σ r(d/σ) (see above).
  static let above = 0.4674
  static let below = 0.0935
  static let slope = 1.0
  static let scale = 0.4674

  let model: Resampled
  /// Each used pair's standard deviation over the resamples (0 with fewer than two values).
  let pairSpread: [Double]
  /// The mean pair spread σ̄ per condition (0 for a condition without used pairs).
  let conditionSpread: [Double]
  /// The bias-corrected gap and worst per condition, and their resamples' standard deviations.
  let gap: [Double?]
  let worst: [Double?]
  let gapShift: [Double]
  let worstShift: [Double]

  init(_ model: Resampled) {
    self.model = model
    let conditions = model.selection.usedConditions
    let k = model.selection.attributeCount
    pairSpread = conditions.indices.map { pair in standardDeviation(model.resamples.map { $0.pairDifferences[pair] }) }
    var sums = [Double](repeating: 0, count: k)
    var counts = [Int](repeating: 0, count: k)
    for (pair, condition) in conditions.enumerated() {
      sums[condition] += pairSpread[pair]
      counts[condition] += 1
    }
    conditionSpread = zip(sums, counts).map { $1 == 0 ? 0 : $0 / Double($1) }
    // The bootstrap's correction of each condition's statistic: its value minus the mean of its
    // resamples.
    func correction(_ value: Double?, _ draws: [Double]) -> Double {
      guard let value, !draws.isEmpty else { return 0 }
      return value - draws.reduce(0, +) / Double(draws.count)
    }
    let gapShift = (0..<k).map { c in correction(model.estimate.gap[c], model.resamples.compactMap { $0.gap[c] }) }
    let worstShift = (0..<k).map { c in correction(model.estimate.worst[c], model.resamples.compactMap { $0.worst[c] }) }
    gap = model.estimate.gap.indices.map { c in model.estimate.gap[c].map { $0 + gapShift[c] } }
    worst = model.estimate.worst.indices.map { c in model.estimate.worst[c].map { $0 + worstShift[c] } }
    self.gapShift = gapShift
    self.worstShift = worstShift
  }

  /// The range [low, high] of the population value around the corrected estimate, per condition.
  var gapRange: [(low: Double, high: Double)] { conditionSpread.map { (-Self.above * $0, Self.below * $0) } }
  var worstRange: [(low: Double, high: Double)] { conditionSpread.map { (-Self.below * $0 / 2, Self.above * $0 / 2) } }

  /// The corrected statistic of resample b (or of the test split for nil), per condition.
  func corrected(_ b: Int?, gap isGap: Bool) -> [Double?] {
    let statistic = b.map { model.resamples[$0] } ?? model.estimate
    let values = isGap ? statistic.gap : statistic.worst
    let shift = isGap ? gapShift : worstShift
    return values.indices.map { c in values[c].map { $0 + shift[c] } }
  }

  func intervals(level: Double) -> BootstrapIntervals {
    let z = standardNormalQuantile((1 + level) / 2)
    let resamples = model.resamples
    func perCondition(_ corrected: [Double?], _ range: [(low: Double, high: Double)], _ draws: (ResampleStatistic, Int) -> Double?) -> [Interval?] {
      corrected.indices.map { c in
        guard let value = corrected[c] else { return nil }
        let spread = standardDeviation(resamples.compactMap { draws($0, c) })
        return interval(value, low: value + range[c].low - z * spread, high: value + range[c].high + z * spread, draws: resamples.compactMap { draws($0, c) })
      }
    }
    /// "all": the medians of the corrected values moved to the low and the high ends, in the
    /// test split and in every resample.
    func all(_ isGap: Bool, _ range: [(low: Double, high: Double)], _ draws: (ResampleStatistic) -> Double?) -> Interval? {
      func end(_ b: Int?, _ side: (Double, Double) -> Double) -> Double? {
        let values = corrected(b, gap: isGap)
        return median(values.indices.compactMap { c in values[c].map { $0 + side(range[c].low, range[c].high) } })
      }
      guard let value = median(corrected(nil, gap: isGap).compactMap { $0 }), let low = end(nil, { l, _ in l }), let high = end(nil, { _, h in h })
      else { return nil }
      let lowSpread = standardDeviation(resamples.indices.compactMap { end($0, { l, _ in l }) })
      let highSpread = standardDeviation(resamples.indices.compactMap { end($0, { _, h in h }) })
      return interval(value, low: low - z * lowSpread, high: high + z * highSpread, draws: resamples.compactMap(draws))
    }
    return BootstrapIntervals(
      gap: perCondition(gap, gapRange) { s, c in s.gap[c] }, worst: perCondition(worst, worstRange) { s, c in s.worst[c] },
      allGap: all(true, gapRange) { $0.allGap }, allWorst: all(false, worstRange) { $0.allWorst },
      meanF1: bootstrapInterval(resamples.map(\.meanF1).filter(\.isFinite), estimate: model.estimate.meanF1, level: level, method: .basic),
      method: .bounded, level: level)
  }

  /// The intervals of `first - second`, paired resample by resample.
  static func difference(_ first: BiasBounds, _ second: BiasBounds, level: Double) -> BootstrapIntervals {
    let z = standardNormalQuantile((1 + level) / 2)
    let k = first.model.selection.attributeCount
    let count = min(first.model.resamples.count, second.model.resamples.count)
    // How far apart the two models' pairs are, per condition: an upper confidence bound on the
    // mean over its pairs of |Δd| (mean |Δd̂|, which |·| biases upward, plus z standard
    // deviations of that mean over the resamples), plus scale × the mean |Δσ|; this bounds the
    // difference of the leftover biases. (Bounding each pair by |Δd̂| + z sd(Δd*) and averaging
    // the bounds, as before, added z pair standard deviations where the mean needs z of the
    // mean's, which averaging over the condition's pairs makes several times smaller.)
    let conditions = first.model.selection.usedConditions
    var apartSums = [Double](repeating: 0, count: k)
    var apartCounts = [Int](repeating: 0, count: k)
    var resampledSums = [[Double]](repeating: [Double](repeating: 0, count: count), count: k)
    var resampledCounts = [[Int]](repeating: [Int](repeating: 0, count: count), count: k)
    for (pair, condition) in conditions.enumerated() {
      let estimate = first.model.estimate.pairDifferences[pair] - second.model.estimate.pairDifferences[pair]
      guard estimate.isFinite else { continue }
      for b in 0..<count {
        let paired = first.model.resamples[b].pairDifferences[pair] - second.model.resamples[b].pairDifferences[pair]
        guard paired.isFinite else { continue }
        resampledSums[condition][b] += abs(paired)
        resampledCounts[condition][b] += 1
      }
      apartSums[condition] += slope * abs(estimate) + scale * abs(first.pairSpread[pair] - second.pairSpread[pair])
      apartCounts[condition] += 1
    }
    for c in 0..<k where apartCounts[c] > 0 {
      let means = (0..<count).compactMap { b in resampledCounts[c][b] == 0 ? nil : resampledSums[c][b] / Double(resampledCounts[c][b]) }
      apartSums[c] += Double(apartCounts[c]) * slope * z * standardDeviation(means)
    }
    let apart = zip(apartSums, apartCounts).map { $1 == 0 ? 0 : $0 / Double($1) }
    // Population difference of gaps within [E D̃ - down, E D̃ + up] (see the file's header).
    let gapDown = (0..<k).map { c in min(above * first.conditionSpread[c] + below * second.conditionSpread[c], apart[c]) }
    let gapUp = (0..<k).map { c in min(below * first.conditionSpread[c] + above * second.conditionSpread[c], apart[c]) }
    let gapRange = (0..<k).map { (low: -gapDown[$0], high: gapUp[$0]) }
    let worstRange = (0..<k).map { (low: -gapUp[$0] / 2, high: gapDown[$0] / 2) }
    func perCondition(_ isGap: Bool, _ range: [(low: Double, high: Double)]) -> [Interval?] {
      let a = first.corrected(nil, gap: isGap)
      let b = second.corrected(nil, gap: isGap)
      return (0..<k).map { c in
        guard let x = a[c], let y = b[c] else { return nil }
        let draws = (0..<count).compactMap { i -> Double? in
          let s = first.model.resamples[i]
          let t = second.model.resamples[i]
          return isGap ? s.gap[c].flatMap { u in t.gap[c].map { u - $0 } } : s.worst[c].flatMap { u in t.worst[c].map { u - $0 } }
        }
        let spread = standardDeviation(draws)
        return interval(x - y, low: x - y + range[c].low - z * spread, high: x - y + range[c].high + z * spread, draws: draws)
      }
    }
    func all(_ isGap: Bool) -> Interval? {
      let firstRange = isGap ? first.gapRange : first.worstRange
      let secondRange = isGap ? second.gapRange : second.worstRange
      func medians(_ model: BiasBounds, _ b: Int?, _ range: [(low: Double, high: Double)], _ side: Int) -> Double? {
        let values = model.corrected(b, gap: isGap)
        return median(values.indices.compactMap { c in values[c].map { $0 + (side < 0 ? range[c].low : side > 0 ? range[c].high : 0) } })
      }
      func ends(_ b: Int?) -> (value: Double, low: Double, high: Double)? {
        guard let a = medians(first, b, firstRange, 0), let bb = medians(second, b, secondRange, 0),
          let aLow = medians(first, b, firstRange, -1), let aHigh = medians(first, b, firstRange, 1),
          let bLow = medians(second, b, secondRange, -1), let bHigh = medians(second, b, secondRange, 1)
        else { return nil }
        return (a - bb, aLow - bHigh, aHigh - bLow)
      }
      guard let center = ends(nil) else { return nil }
      // The pairing bound: the corrected values' largest distance, twice, plus the largest
      // per-condition bound on the leftover biases' difference.
      let a = first.corrected(nil, gap: isGap)
      let b = second.corrected(nil, gap: isGap)
      let distance = (0..<k).compactMap { c in a[c].flatMap { x in b[c].map { abs(x - $0) } } }.max() ?? 0
      let pairing = 2 * distance + (apart.max() ?? 0) * (isGap ? 1 : 0.5)
      let draws = (0..<count).compactMap { ends($0) }
      let spread = standardDeviation(draws.map(\.value))
      let low = max(center.low, center.value - pairing) - z * spread
      let high = min(center.high, center.value + pairing) + z * spread
      return interval(center.value, low: low, high: high, draws: draws.map(\.value))
    }
    let f1 = (0..<count).map { first.model.resamples[$0].meanF1 - second.model.resamples[$0].meanF1 }.filter(\.isFinite)
    return BootstrapIntervals(
      gap: perCondition(true, gapRange), worst: perCondition(false, worstRange), allGap: all(true), allWorst: all(false),
      meanF1: bootstrapInterval(f1, estimate: first.model.estimate.meanF1 - second.model.estimate.meanF1, level: level, method: .basic),
      method: .bounded, level: level)
  }
}

/// An interval around a corrected estimate; `draws` give the resamples' mean and count.
private func interval(_ estimate: Double, low: Double, high: Double, draws: [Double]) -> Interval? {
  guard draws.count > 1 else { return nil }
  return Interval(low: low, high: high, estimate: estimate, mean: draws.reduce(0, +) / Double(draws.count), resamples: draws.count)
}

/// The sample standard deviation of the finite values (0 with fewer than two).
func standardDeviation(_ values: [Double]) -> Double {
  let finite = values.filter(\.isFinite)
  guard finite.count > 1 else { return 0 }
  let mean = finite.reduce(0, +) / Double(finite.count)
  return (finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(finite.count - 1)).squareRoot()
}

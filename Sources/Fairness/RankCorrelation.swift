// Finding (d) of the paper, "the gap shrinks as rho grows", against a null. A negative rank
// correlation between an attribute's balance rho and its F1 gap arises without any model
// property: a rare condition has small subgroups, whose F1s are noisier and differ more, and
// the trivial every-positive predictor shows it too (its F1 in a subgroup is 2p/(1+p) for the
// subgroup's positive rate p). So a model's correlation is compared with the trivial
// predictor's on the same test images: the paired difference, with a bootstrap interval, on the
// bias-corrected gaps.
import Foundation

/// Spearman's rank correlation (average ranks for ties); NaN when either side is constant.
public func spearmanCorrelation(_ a: [Double], _ b: [Double]) -> Double {
  func ranks(_ v: [Double]) -> [Double] {
    let order = v.indices.sorted { v[$0] < v[$1] }
    var r = [Double](repeating: 0, count: v.count)
    var i = 0
    while i < order.count {
      var j = i
      while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
      for k in i...j { r[order[k]] = Double(i + j) / 2 }
      i = j + 1
    }
    return r
  }
  guard a.count == b.count, a.count > 1 else { return .nan }
  let (ra, rb) = (ranks(a), ranks(b))
  let ma = ra.reduce(0, +) / Double(ra.count)
  let mb = rb.reduce(0, +) / Double(rb.count)
  var (sab, saa, sbb) = (0.0, 0.0, 0.0)
  for i in ra.indices {
    sab += (ra[i] - ma) * (rb[i] - mb)
    saa += (ra[i] - ma) * (ra[i] - ma)
    sbb += (rb[i] - mb) * (rb[i] - mb)
  }
  return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : .nan
}

/// How much a model's F1 gap changes with its condition's balance rho, against another model on
/// the same test images: each model's trend is the least-squares slope of its bias-corrected gaps
/// (each condition's gap minus the bootstrap's estimate of its bias, mean(g*) - ĝ) on the rank of
/// rho, times (conditions - 1): the fitted change of the gap from the least balanced condition to
/// the most balanced one, in F1. The difference first - second gets a percentile interval over the
/// same resamples (each resample's gaps corrected by the same amounts).
///
/// A trend, unlike a correlation, is linear in the gaps, so their test noise widens its interval
/// without biasing it; a correlation of noisy gaps is pulled toward 0 (by 0.23-0.30 in the
/// simulation of docs/statistics.md), and a paired difference of two correlations is then biased.
/// Checked by simulation against population trends (`CoverageSimulation.trendDifference`).
public struct TrendDifference: Sendable {
  public let first: Double
  public let second: Double
  public let difference: Interval?
  /// Spearman(rho, corrected gap) of each model, for description.
  public let firstCorrelation: Double
  public let secondCorrelation: Double

  public init(_ first: ModelEvaluation, _ second: ModelEvaluation, options: BootstrapOptions) {
    let selection = first.summary.selection
    let draws = Bootstrap.resample([first.outcomes, second.outcomes], count: options.resamples, seed: options.seed, selection: selection)
    self.init(
      Resampled(estimate: ResampleStatistic(first.summary), resamples: draws[0], selection: selection),
      Resampled(estimate: ResampleStatistic(second.summary), resamples: draws[1], selection: selection),
      rho: first.summary.rho, level: options.level)
  }

  public init(_ a: Resampled, _ b: Resampled, rho: [Double], level: Double) {
    let conditions = rho.indices.filter { a.estimate.gap[$0] != nil && b.estimate.gap[$0] != nil }
    func shift(_ model: Resampled) -> [Double] {
      conditions.map { c in
        let draws = model.resamples.compactMap { $0.gap[c] }
        return draws.isEmpty ? 0 : model.estimate.gap[c]! - draws.reduce(0, +) / Double(draws.count)
      }
    }
    let (shiftA, shiftB) = (shift(a), shift(b))
    let x = conditions.map { rho[$0] }
    func gaps(_ statistic: ResampleStatistic, _ shift: [Double]) -> [Double]? {
      var values: [Double] = []
      for (i, c) in conditions.enumerated() {
        guard let g = statistic.gap[c] else { return nil }
        values.append(g + shift[i])
      }
      return values
    }
    let estimateA = gaps(a.estimate, shiftA) ?? []
    let estimateB = gaps(b.estimate, shiftB) ?? []
    first = rankTrend(x, estimateA)
    second = rankTrend(x, estimateB)
    firstCorrelation = spearmanCorrelation(x, estimateA)
    secondCorrelation = spearmanCorrelation(x, estimateB)
    let count = min(a.resamples.count, b.resamples.count)
    let differences = (0..<count).compactMap { i -> Double? in
      // Each resample's gaps are corrected by the test split's amounts, so the interval sits
      // between the plain and the corrected trend; centred on the corrected one instead (the
      // resamples corrected twice) it covered only 90-95% in the simulation, the basic
      // correction leaving part of the bias (docs/statistics.md).
      guard let u = gaps(a.resamples[i], shiftA), let v = gaps(b.resamples[i], shiftB) else { return nil }
      let d = rankTrend(x, u) - rankTrend(x, v)
      return d.isFinite ? d : nil
    }
    let estimate = first - second
    difference = estimate.isFinite ? bootstrapInterval(differences, estimate: estimate, level: level, method: .percentile) : nil
  }
}

/// The least-squares slope of `y` on the ranks of `x` (ties broken by position), times
/// (count - 1): the fitted change of y from the lowest x to the highest. NaN with fewer than 2.
public func rankTrend(_ x: [Double], _ y: [Double]) -> Double {
  guard x.count == y.count, x.count > 1 else { return .nan }
  let order = x.indices.sorted { x[$0] < x[$1] }
  var rank = [Double](repeating: 0, count: x.count)
  for (r, i) in order.enumerated() { rank[i] = Double(r) }
  let mr = rank.reduce(0, +) / Double(rank.count)
  let my = y.reduce(0, +) / Double(y.count)
  var (sry, srr) = (0.0, 0.0)
  for i in rank.indices {
    sry += (rank[i] - mr) * (y[i] - my)
    srr += (rank[i] - mr) * (rank[i] - mr)
  }
  return sry / srr * Double(x.count - 1)
}

// findings.md: the paper's findings checked on this run, in plain words, with the bootstrap
// intervals of the best model of each strategy and the spread over fine-tuning seeds, so that a
// difference smaller than seed noise is not called a finding. Nothing here is tuned to agree
// with the paper: each finding says whether it holds, holds in direction only, or does not.
import Fairness
import Foundation

public enum Findings {
  /// One strategy over its seeds: the sweep's best model (bootstrapped) and the re-runs.
  struct Seeds {
    let main: EvaluatedRun
    let runs: [EvaluatedRun]

    var worst: [Double] { runs.compactMap { $0.evaluation.model.summary.allWorst } }
    var gap: [Double] { runs.compactMap { $0.evaluation.model.summary.allGap } }
    var meanF1: [Double] { runs.map { MeanF1.value($0.evaluation.model.outcomes) } }
    var seconds: [Double] { runs.map(\.record.trainingSeconds) }
  }

  static func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }
  static func sd(_ v: [Double]) -> Double {
    guard v.count > 1 else { return 0 }
    let m = mean(v)
    return (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
  }
  static func spread(_ v: [Double]) -> String {
    v.count > 1 ? String(format: "%.3f ± %.3f", mean(v), sd(v)) : String(format: "%.3f", mean(v))
  }
  static func interval(_ i: Interval?) -> String { i.map { String(format: "[%.3f, %.3f]", $0.low, $0.high) } ?? "(no interval)" }

  /// Spearman's rank correlation (average ranks for ties).
  static func spearman(_ a: [Double], _ b: [Double]) -> Double {
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
    let (ra, rb) = (ranks(a), ranks(b))
    let (ma, mb) = (mean(ra), mean(rb))
    var (sab, saa, sbb) = (0.0, 0.0, 0.0)
    for i in ra.indices {
      sab += (ra[i] - ma) * (rb[i] - mb)
      saa += (ra[i] - ma) * (ra[i] - ma)
      sbb += (rb[i] - mb) * (rb[i] - mb)
    }
    return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : .nan
  }

  /// `main`: one bootstrapped run per strategy (the sweep's best); `seedRuns`: more runs of the
  /// same strategies with other seeds; `probe`: a linear probe on a randomly initialised backbone.
  public static func markdown(main: [EvaluatedRun], seedRuns: [EvaluatedRun], probe: EvaluatedRun?, bootstrap: BootstrapOptions) -> String {
    var groups: [Strategy: Seeds] = [:]
    for run in main {
      groups[run.record.strategy] = Seeds(main: run, runs: [run] + seedRuns.filter { $0.record.strategy == run.record.strategy })
    }
    let seedCount = groups.values.map(\.runs.count).min() ?? 0
    var text = "# Findings\n\n"
    text += "Each strategy's best trial of the sweep, evaluated on the test split with \(bootstrap.resamples) bootstrap resamples (95% intervals in brackets)"
    text += seedCount > 1 ? ", and fine-tuned again with the same hyper-parameters and other seeds: \(seedCount) seeds per strategy, shown as mean ± standard deviation.\n\n" : ".\n\n"

    // The seeds table.
    text += "| model | seeds | test mean F1 | all gap ↓ | all worst ↑ | training time (s) |\n|---|---|---|---|---|---|\n"
    for strategy in Strategy.allCases {
      guard let g = groups[strategy] else { continue }
      text += "| \(strategy.rawValue) | \(g.runs.count) | \(spread(g.meanF1)) | \(spread(g.gap)) | \(spread(g.worst)) | \(spread(g.seconds).replacingOccurrences(of: ".000", with: "")) |\n"
    }
    text += "\n"

    // Pretraining learned something: the linear probe against the same probe on a random backbone.
    if let probe, let frozen = groups[.frozen] {
      let result = MeanF1.intervals([frozen.main.evaluation.model.outcomes, probe.evaluation.model.outcomes], options: bootstrap)
      let holds = (result.difference?.low ?? -1) > 0
      text += "## Pretraining\n\n"
      text += String(
        format: "A linear probe (frozen strategy, the same hyper-parameters) on the SimCLR backbone reaches a test mean F1 of %.3f %@; on a randomly initialised backbone %.3f %@. The paired difference is %.3f %@: ",
        result.values[0], interval(result.intervals[0]), result.values[1], interval(result.intervals[1]), result.values[0] - result.values[1],
        interval(result.difference))
      text += holds ? "**pretraining learned features a linear probe can use**.\n\n" : "**the SimCLR backbone is not clearly better than a random one here**.\n\n"
    }

    text += "## The paper's findings on this data\n\n"
    func compare(_ a: Strategy, _ b: Strategy) -> (ma: Double, mb: Double, noise: Double, ia: Interval?, ib: Interval?, va: Double?, vb: Double?)? {
      guard let ga = groups[a], let gb = groups[b] else { return nil }
      return (mean(ga.worst), mean(gb.worst), (sd(ga.worst) * sd(ga.worst) + sd(gb.worst) * sd(gb.worst)).squareRoot(),
        ga.main.evaluation.intervals?.allWorst ?? nil, gb.main.evaluation.intervals?.allWorst ?? nil,
        ga.main.evaluation.model.summary.allWorst, gb.main.evaluation.model.summary.allWorst)
    }
    func describe(_ s: Strategy) -> String {
      guard let g = groups[s] else { return s.rawValue }
      return "\(s.rawValue) \(spread(g.worst))\(g.runs.count > 1 ? " over seeds" : ""), best trial \(formatted(g.main.evaluation.model.summary.allWorst)) \(interval(g.main.evaluation.intervals?.allWorst ?? nil))"
    }
    // (a)
    if let c = compare(.bnStats, .frozen) {
      let d = c.ma - c.mb
      let separated = (c.ia?.low ?? .infinity) > (c.ib?.high ?? -.infinity) || (c.ia == nil && c.ib == nil)
      let verdict = d > 0 && d > c.noise && separated ? "holds" : d > 0 ? "holds in direction only (the difference is within the noise)" : "does not hold"
      text += String(format: "- (a) BN Stats improves worst-group F1 over Frozen (all row; paper .43 -> .69): **%@**. %@ vs %@: %+.3f (%+.0f%%), seed spread of the difference %.3f.\n",
        verdict, describe(.bnStats), describe(.frozen), d, 100 * d / max(c.mb, 1e-9), c.noise)
    }
    func close(_ a: Strategy, _ b: Strategy, _ label: String) {
      guard let c = compare(a, b) else { return }
      let d = c.ma - c.mb
      let insideB = c.ib.map { i in c.va.map { i.low <= $0 && $0 <= i.high } ?? false } ?? false
      let verdict = insideB || abs(d) <= max(c.noise, 1e-12) ? "holds" : "does not hold"
      text += String(format: "- %@: **%@**. %@ vs %@: difference %+.3f, seed spread %.3f; %@.\n", label, verdict, describe(a), describe(b), d, c.noise,
        insideB ? "the first lies inside the second's interval" : "the first lies outside the second's interval")
    }
    close(.bnStatsSkip, .full, "(b) BN Stats + Skip is within the interval of Full FT")
    close(.full, .supervised, "(c) Full FT and Supervised are close")
    // (d)
    var correlations: [String] = []
    var negative = 0
    for run in main {
      let s = run.evaluation.model.summary
      let pairs = s.gap.indices.compactMap { i in s.gap[i].map { (s.rho[i], $0) } }
      let r = spearman(pairs.map(\.0), pairs.map(\.1))
      if r < 0 { negative += 1 }
      correlations.append(String(format: "%@ %.2f", run.label, r))
    }
    let most = negative * 2 > main.count
    text += "- (d) The gap shrinks as rho grows: **\(negative == main.count ? "holds" : most ? "holds for most models" : "does not hold")**. Spearman correlation of F1 gap with rho over the attributes: \(correlations.joined(separator: ", ")).\n"
    // (e)
    func ratio(_ a: Strategy, _ b: Strategy) -> Double? {
      guard let ga = groups[a], let gb = groups[b] else { return nil }
      return mean(ga.seconds) / max(mean(gb.seconds), 1e-9)
    }
    if let r1 = ratio(.supervised, .bnStats), let r2 = ratio(.full, .bnStatsSkip) {
      let verdict = r1 > 1 && r2 > 1 ? "holds in direction" : "does not hold"
      text += String(format: "- (e) Training-time ratios: **%@**. Supervised / BN Stats %.2fx (paper 4.4x), Full FT / BN Stats + Skip %.2fx (paper 1.33x); each model's training time is its own trial's epochs, drawn by the sweep.\n", verdict, r1, r2)
    }
    text += "\nIntervals are 95% percentile bootstrap intervals over resampled test images of the best trial; \"seed spread\" is the standard deviation over fine-tuning seeds (combined for a difference). A finding holds when the difference is larger than both; \"in direction only\" when it points the paper's way but is within the noise.\n"
    return text
  }
}

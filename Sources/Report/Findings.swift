// findings.md: the paper's findings checked on this run, in plain words, each decided on the
// paired bootstrap difference of two models (better, equivalent within a stated margin, or
// inconclusive), with the spread over fresh fine-tuning seeds beside it. Nothing here is tuned
// to agree with the paper: each finding says whether it holds, does not, or is not shown.
import Experiment
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

  /// Spearman's rank correlation (average ranks for ties).
  static func spearman(_ a: [Double], _ b: [Double]) -> Double { spearmanCorrelation(a, b) }

  /// The equivalence margin: two models whose paired 90% interval of a difference lies within
  /// ±margin F1 are called equivalent on that statistic.
  public static let margin = 0.02

  /// One paired verdict in words: the bias-corrected difference, its 95% and 90% intervals, what
  /// they allow one to say, and the smallest difference the comparison resolves (the 95%
  /// interval's half-width) on `images` test images. `within`: the 90% interval lies inside the
  /// equivalence margin (whatever else the verdict says).
  static func paired(_ interval: Interval?, _ equivalence: Interval?, higherIsBetter: Bool, images: Int? = nil)
    -> (verdict: Verdict?, within: Bool, text: String)
  {
    guard let interval, let equivalence else { return (nil, false, "no interval") }
    let (verdict, within) = Verdict.decide(interval, equivalence: equivalence, margin: margin, higherIsBetter: higherIsBetter)
    let text = String(format: "difference %+.3f, 95%% [%+.3f, %+.3f], 90%% [%+.3f, %+.3f]", interval.estimate, interval.low, interval.high, equivalence.low, equivalence.high)
    let resolution = (interval.high - interval.low) / 2
    let on = images.map { "with \(grouped($0)) test images" } ?? "with these test images"
    let word: String
    switch verdict {
    case .better, .worse: word = "**\(verdict.rawValue)**" + (within ? String(format: " (by less than the ±%.2f margin)", margin) : "")
    case .equivalent: word = String(format: "**equivalent within ±%.2f**", margin)
    case .inconclusive: return (verdict, within, text + String(format: ": **inconclusive**: differences below %.3f cannot be resolved %@", resolution, on))
    }
    return (verdict, within, text + ": " + word + String(format: " (it resolves differences of %.3f %@)", resolution, on))
  }

  /// `main`: one bootstrapped run per strategy (the sweep's best); `seedRuns`: the same settings
  /// retrained with fresh seeds (not the sweep's own trial); `probe`: a linear probe on a
  /// randomly initialised backbone.
  /// `times`: false for models whose training times say nothing of the strategies (converged
  /// heads: a feature table and a solve).
  /// `backbones`: each further pretrained backbone's runs (a run per strategy at its selected
  /// settings); when given, the table's spread columns are over the backbones, the unit of
  /// replication, and the seeds' spread stays in the findings' lines.
  public static func markdown(
    main: [EvaluatedRun], seedRuns: [EvaluatedRun], probe: EvaluatedRun?, trivial: Baseline?, bootstrap: BootstrapOptions,
    epochTimes: EpochTimes? = nil, backbones: [[EvaluatedRun]] = [], times: Bool = true
  ) -> String {
    // One group per strategy, a balanced bn-recal apart from the pooled one.
    var groups: [String: Seeds] = [:]
    for run in main {
      groups[run.record.variant] = Seeds(main: run, runs: seedRuns.filter { $0.record.variant == run.record.variant })
    }
    let seedCount = groups.values.map(\.runs.count).min() ?? 0
    let images = main.first?.evaluation.testImages
    var text = "# Findings\n\n"
    text += "Each strategy's best trial of the sweep is evaluated on the test split. Two models are compared on the same \(bootstrap.resamples) bootstrap resamples of the test images (paired); a difference is \(ComparisonTable.intervalWording(bootstrap.method, levels: "95% and 90%")). "
    text += String(format: "A model is **better** when the 95%% interval of the difference excludes 0 in its favour, **equivalent** when the 90%% interval lies within ±%.2f F1 (two one-sided tests at 5%%), and otherwise the comparison is **inconclusive**. ", margin)
    text += seedCount > 0
      ? "The best settings were also retrained with \(seedCount) fresh seed\(seedCount == 1 ? "" : "s") (the sweep's own trial excluded)" + (backbones.isEmpty ? ": the seeds columns show their mean ± standard deviation.\n\n" : "; the findings below give their spread.\n\n")
      : "No seed re-runs were given.\n\n"
    if !backbones.isEmpty {
      text += "The backbones columns show the mean ± standard deviation over the \(backbones.count + 1) pretrained backbones (the sweep's selected trial on the first, the same settings on each of the others).\n\n"
    }

    // The spread columns: over the backbones (the sweep's selected trial and the same settings on
    // every further backbone) when there are several, else over the fresh seeds.
    let over = backbones.isEmpty ? "seeds" : "backbones"
    text += "The table's gap and worst are the plain statistics; Table 1's estimates and every paired difference below are bias-corrected (docs/statistics.md).\n\n"
    text += "| model | test mean F1 | all gap ↓ (plain) | all worst ↑ (plain) | \(over) | \(over): mean F1 | \(over): all gap | \(over): all worst | training time (s) |\n|---|---|---|---|---|---|---|---|---|\n"
    for run in main {
      guard let g = groups[run.record.variant], g.main.label == run.label else { continue }
      let summary = g.main.evaluation.model.summary
      let spreadRuns = backbones.isEmpty
        ? g.runs : [g.main] + backbones.compactMap { $0.first { $0.record.variant == run.record.variant } }
      let spreadGroup = Seeds(main: g.main, runs: spreadRuns)
      let count = spreadRuns.count
      text += "| \(run.record.variant) | \(formatted(MeanF1.value(g.main.evaluation.model.outcomes))) | \(formatted(summary.allGap)) | \(formatted(summary.allWorst)) | \(count) | "
      text += count > 0 ? "\(spread(spreadGroup.meanF1)) | \(spread(spreadGroup.gap)) | \(spread(spreadGroup.worst)) | " : "| | | "
      text += "\(String(format: "%.0f", g.main.record.trainingSeconds)) |\n"
    }
    if let trivial {
      let floor = trivial.evaluation.model.summary.meanF1
      let near = main.filter { $0.evaluation.model.summary.meanF1 - floor < Table1.trivialMargin }.map(\.label)
      text += String(format: "\nThe trivial predictor (every image positive, thresholds from train) has a test mean F1 of %.3f. ", floor)
      text += near.isEmpty
        ? String(format: "Every model is more than %.2f above it.\n", Table1.trivialMargin)
        : String(format: "**Within %.2f of it, and so having learned little whatever their fairness figures say: %@.**\n", Table1.trivialMargin, near.joined(separator: ", "))
    }
    text += "\n"

    func compare(_ a: EvaluatedRun, _ b: EvaluatedRun) -> PairedComparison {
      PairedComparison(a.evaluation.model, b.evaluation.model, options: bootstrap)
    }

    // Pretraining learned something: the linear probe against the same probe on a random backbone.
    if let probe, let frozen = groups[Strategy.frozen.rawValue] {
      let c = compare(frozen.main, probe)
      let (verdict, _, words) = paired(c.meanF1, c.meanF1Equivalence, higherIsBetter: true, images: images)
      text += "## Pretraining\n\n"
      text += String(format: "A linear probe (frozen strategy, the same settings) on the SimCLR backbone reaches a test mean F1 of %.3f; on a randomly initialised backbone %.3f. SimCLR minus random, mean F1: ",
        MeanF1.value(frozen.main.evaluation.model.outcomes), MeanF1.value(probe.evaluation.model.outcomes))
      text += words + (verdict == .better ? ": pretraining learned features a linear probe can use.\n\n" : ": the SimCLR backbone is not clearly better than a random one here.\n\n")
    }

    text += "## The paper's findings on this data\n\n"
    func finding(_ label: String, _ a: Strategy, _ b: Strategy, expect: Verdict, paper: String) {
      guard let ga = groups[a.rawValue], let gb = groups[b.rawValue] else { return }
      let c = compare(ga.main, gb.main)
      let worst = paired(c.intervals.allWorst, c.equivalence.allWorst, higherIsBetter: true, images: images)
      let gap = paired(c.intervals.allGap, c.equivalence.allGap, higherIsBetter: false, images: images)
      let f1 = paired(c.meanF1, c.meanF1Equivalence, higherIsBetter: true, images: images)
      // An equivalence holds when its test passes, even if the difference is also significant.
      let met = worst.verdict == expect || (expect == .equivalent && worst.within)
      let holds = met ? "holds" : worst.verdict == .inconclusive ? "not shown (inconclusive)" : "does not hold"
      text += "- \(label) (\(paper)): **\(holds)** on all worst. \(a.rawValue) minus \(b.rawValue): all worst \(worst.text); all gap \(gap.text); mean F1 \(f1.text)."
      if !ga.worst.isEmpty && !gb.worst.isEmpty {
        text += " Over fresh seeds: all worst \(spread(ga.worst)) against \(spread(gb.worst))."
      }
      text += "\n"
    }
    finding("(a) BN Stats improves worst-group F1 over Frozen", .bnStats, .frozen, expect: .better, paper: "paper: all worst .43 -> .69, +0.26, which the paper calls 36%: of Full FT's .72")
    finding("(b) BN Stats + Skip matches Full FT", .bnStatsSkip, .full, expect: .equivalent, paper: "paper: within Full's interval")
    finding("(c) Full FT and Supervised are close", .full, .supervised, expect: .equivalent, paper: "paper: close")
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
    if let trivial {
      text += trendFinding(main, trivial: trivial, bootstrap: bootstrap, images: images)
    } else {
      let most = negative * 2 > main.count
      text += "- (d) The gap shrinks as rho grows: **\(negative == main.count ? "holds in sign" : most ? "holds in sign for most models" : "does not hold")**, without the trivial predictor to compare with (base rates and test noise alone make a rare attribute's gap larger, so a negative correlation is not evidence by itself). Spearman correlation of F1 gap (plain) with rho over the attributes (pairs below --min-support excluded): \(correlations.joined(separator: ", ")).\n"
    }
    // (e)
    func ratio(_ a: Strategy, _ b: Strategy) -> Double? {
      guard let ga = groups[a.rawValue], let gb = groups[b.rawValue] else { return nil }
      return ga.main.record.trainingSeconds / max(gb.main.record.trainingSeconds, 1e-9)
    }
    if times, let r1 = ratio(.supervised, .bnStats), let r2 = ratio(.full, .bnStatsSkip) {
      let verdict = r1 > 1 && r2 > 1 ? "holds in direction" : "does not hold"
      text += String(format: "- (e) Training time, the paper's way (whole training of the selected models): **%@**. Supervised / BN Stats %.2fx (paper 4.4x), Full FT / BN Stats + Skip %.2fx (paper 1.33x); each is the selected trial's own training, so it measures the epochs the search drew as much as the work per epoch.", verdict, r1, r2)
      if let epochTimes, let a = epochTimes.seconds[.supervised], let b = epochTimes.seconds[.bnStats], let c = epochTimes.seconds[.full],
        let d = epochTimes.seconds[.bnStatsSkip], b > 0, d > 0 {
        text += String(format: " The fair way, per epoch at the same steps on the same data, measured side by side: Supervised / BN Stats %.2fx, Full FT / BN Stats + Skip %.2fx: the work each strategy does per image, whatever the search drew.", a / b, c / d)
      }
      text += "\n"
    }
    text += recalibration(groups, compare: compare, epochTimes: epochTimes, images: images, times: times)
    return text
  }

  /// Finding (d) against the trivial predictor (every image positive), whose gap also falls with
  /// rho, from base rates and test noise alone: each model's trend of the bias-corrected gap with
  /// rho minus the trivial predictor's, paired on the same resamples (`TrendDifference`).
  static func trendFinding(_ main: [EvaluatedRun], trivial: Baseline, bootstrap: BootstrapOptions, images: Int?) -> String {
    var lines: [String] = []
    var steeper = 0
    var shallower = 0
    var trivialTrend = Double.nan
    var trivialCorrelation = Double.nan
    var widest = 0.0
    for run in main {
      let t = TrendDifference(run.evaluation.model, trivial.evaluation.model, options: bootstrap)
      trivialTrend = t.second
      trivialCorrelation = t.secondCorrelation
      guard let d = t.difference else { continue }
      if d.high < 0 { steeper += 1 }
      if d.low > 0 { shallower += 1 }
      widest = max(widest, (d.high - d.low) / 2)
      lines.append(String(format: "%@ %+.3f [%+.3f, %+.3f]%@ (its trend %+.3f, Spearman %.2f)", run.label, d.estimate, d.low, d.high, d.low > 0 || d.high < 0 ? " *" : "", t.first, t.firstCorrelation))
    }
    let verdict = steeper == main.count ? "holds" : steeper > 0 ? "holds for \(steeper) of \(main.count) models" : "not shown beyond base rates"
    var text = "- (d) The gap shrinks as rho grows, beyond what base rates and test noise give: **\(verdict)**. "
    text += String(format: "The trivial predictor (every image positive) has no model in it, yet its bias-corrected gap changes by %+.3f F1 from the least to the most balanced attribute (Spearman %.2f): rare attributes have small subgroups and noisier F1s. ", trivialTrend, trivialCorrelation)
    text += "Each model's change (the least-squares trend of its bias-corrected gaps on the rank of rho, across the attributes) minus the trivial predictor's, paired on the same resamples, 95% percentile intervals, * excludes 0; negative means the model's gap falls with rho more steeply than the trivial predictor's: "
    text += lines.joined(separator: "; ") + "."
    if steeper < main.count {
      text += String(format: " Differences below about %.3f cannot be resolved%@.", widest, images.map { " with \(grouped($0)) test images" } ?? "")
    }
    if shallower > 0 { text += " \(shallower) model\(shallower == 1 ? "'s gap falls" : "s' gaps fall") less steeply than the trivial predictor's." }
    return text + "\n"
  }

  /// Beyond the paper: bn-recal (statistics set in one pass) against bn-stats (statistics updated
  /// while the head trains), and a recalibration balanced on an attribute against the pooled one.
  static func recalibration(
    _ groups: [String: Seeds], compare: (EvaluatedRun, EvaluatedRun) -> PairedComparison, epochTimes: EpochTimes?, images: Int?,
    times: Bool
  ) -> String {
    guard let recal = groups[Strategy.bnRecal.rawValue] else { return "" }
    var text = "\n## Beyond the paper: BatchNorm recalibration\n\n"
    text += "bn-recal keeps the backbone's weights, sets every BatchNorm's running statistics to the exact mean and variance of its input over the train images in one forward pass, and trains only the head, as frozen does.\n\n"
    if let stats = groups[Strategy.bnStats.rawValue] {
      let c = compare(recal.main, stats.main)
      let f1 = paired(c.meanF1, c.meanF1Equivalence, higherIsBetter: true, images: images)
      let worst = paired(c.intervals.allWorst, c.equivalence.allWorst, higherIsBetter: true, images: images)
      let gap = paired(c.intervals.allGap, c.equivalence.allGap, higherIsBetter: false, images: images)
      // Equivalent when the equivalence test passes, even if the difference is also significant.
      let matches = [f1, worst].allSatisfy { $0.verdict == .equivalent || $0.within }
      let worse = [f1.verdict, worst.verdict].contains { $0 == .worse }
      let better = [f1.verdict, worst.verdict].contains { $0 == .better } && !worse
      let word = matches ? "matches bn-stats" : worse ? "does not match bn-stats (worse)" : better ? "does better than bn-stats" : "not shown to match bn-stats (inconclusive)"
      text += String(format: "- (f) Does bn-recal match bn-stats (equivalent when the paired 90%% interval lies within ±%.2f F1)? **%@** on mean F1 and all worst. bn-recal minus bn-stats: mean F1 %@; all worst %@; all gap %@.",
        margin, word, f1.text, worst.text, gap.text)
      if !recal.worst.isEmpty && !stats.worst.isEmpty {
        text += " Over fresh seeds: all worst \(spread(recal.worst)) against \(spread(stats.worst))."
      }
      if times {
        text += String(format: " Training time, whole training of the selected models: bn-recal %.0f s, bn-stats %.0f s (%.2f of it)",
          recal.main.record.trainingSeconds, stats.main.record.trainingSeconds,
          recal.main.record.trainingSeconds / max(stats.main.record.trainingSeconds, 1e-9))
        if let epochTimes, let a = epochTimes.seconds[.bnRecal], let b = epochTimes.seconds[.bnStats], b > 0 {
          text += String(format: "; side by side, an epoch of bn-recal (with its passes) against one of bn-stats: %.2f", a / b)
        }
        text += "."
      }
      text += "\n"
    }
    for (variant, balanced) in groups.sorted(by: { $0.key < $1.key }) where variant != recal.main.record.variant && balanced.main.record.strategy == .bnRecal {
      guard let attribute = balanced.main.record.bnBalance else { continue }
      let c = compare(balanced.main, recal.main)
      let names = balanced.main.evaluation.attributeNames
      let f1 = paired(c.meanF1, c.meanF1Equivalence, higherIsBetter: true, images: images)
      let all = paired(c.intervals.allWorst, c.equivalence.allWorst, higherIsBetter: true, images: images)
      text += "- (g) Does recalibration balanced on \(attribute) help the worst group? \(variant) minus bn-recal: "
      if let k = names.firstIndex(of: attribute), let worst = c.intervals.worst[k], let gap = c.intervals.gap[k] {
        let w = paired(worst, c.equivalence.worst[k], higherIsBetter: true, images: images)
        let g = paired(gap, c.equivalence.gap[k], higherIsBetter: false, images: images)
        text += "for c = \(attribute), worst \(w.text), gap \(g.text); "
      } else {
        text += "c = \(attribute) has no used pair in the test images; "
      }
      text += "all worst \(all.text); mean F1 \(f1.text)."
      if !balanced.worst.isEmpty && !recal.worst.isEmpty {
        text += " Over fresh seeds: all worst \(spread(balanced.worst)) against \(spread(recal.worst))."
      }
      text += "\n"
    }
    return text
  }

  /// The findings that compare two strategies, as (name, a, b, what the paper expects).
  static let pairwise: [(name: String, a: Strategy, b: Strategy, expect: Verdict)] = [
    ("(a) bn-stats minus frozen", .bnStats, .frozen, .better),
    ("(b) bn-stats-skip minus full", .bnStatsSkip, .full, .equivalent),
    ("(c) full minus supervised", .full, .supervised, .equivalent),
    ("(f) bn-recal minus bn-stats", .bnRecal, .bnStats, .equivalent),
  ]

  /// Across pretrained backbones, the unit of replication of a claim about SimCLR models: each
  /// pairwise finding's all-worst difference on every backbone (each strategy fine-tuned there
  /// with the sweep's selected settings), its paired interval and verdict, and across the
  /// backbones the mean, the range and how many agree in sign with the first.
  public static func acrossBackbones(_ backbones: [[EvaluatedRun]], bootstrap: BootstrapOptions) -> String {
    guard backbones.count > 1 else { return "" }
    var text = "\n## Across pretrained backbones\n\n"
    text += "Backbone 1 is the sweep's; backbones 2 to \(backbones.count) were pretrained with other seeds and each strategy fine-tuned on them with its selected settings. All worst, paired on the test images (95% intervals, \(bootstrap.resamples) resamples):\n\n"
    text += "| finding | " + backbones.indices.map { "backbone \($0 + 1)" }.joined(separator: " | ") + " | mean | range | same sign |\n"
    text += "|---|" + String(repeating: "---|", count: backbones.count + 3) + "\n"
    for finding in pairwise {
      var cells: [String] = []
      var differences: [Double] = []
      for runs in backbones {
        guard let a = runs.first(where: { $0.record.variant == finding.a.rawValue }),
          let b = runs.first(where: { $0.record.variant == finding.b.rawValue })
        else {
          cells.append("n/a")
          continue
        }
        let c = PairedComparison(a.evaluation.model, b.evaluation.model, options: bootstrap)
        let (verdict, _, _) = paired(c.intervals.allWorst, c.equivalence.allWorst, higherIsBetter: true)
        guard let interval = c.intervals.allWorst else {
          cells.append("no interval")
          continue
        }
        differences.append(interval.estimate)
        cells.append(String(format: "%+.3f [%+.3f, %+.3f] %@", interval.estimate, interval.low, interval.high, verdict?.rawValue ?? ""))
      }
      let agree = differences.filter { ($0 > 0) == ((differences.first ?? 0) > 0) }.count
      let summary = differences.isEmpty
        ? "n/a | n/a | n/a"
        : String(format: "%+.3f | %+.3f to %+.3f | %d of %d", mean(differences), differences.min()!, differences.max()!, agree, differences.count)
      text += "| \(finding.name) (expected: \(finding.expect.rawValue)) | " + cells.joined(separator: " | ") + " | \(summary) |\n"
    }
    return text
  }
}

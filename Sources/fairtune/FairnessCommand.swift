// `fairtune fairness`: the paper's fairness metrics for any model's scores, with bootstrap
// intervals and a paired comparison; `--bench` times the fast paths on synthetic data.
import ArgumentParser
import CelebAFormat
import Fairness
import Foundation
import Report

extension IntervalMethod: ExpressibleByArgument {}

struct FairnessCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fairness",
    abstract: "F1 gap and worst-group F1 over all ordered attribute pairs, for any model's scores.",
    discussion: paragraphs("""
      Thresholds maximise train F1 per attribute; the metrics are computed on the test split for \
      every ordered pair (t, c) of attributes. Writes OUT/fairness.json (thresholds, per-attribute \
      gap, worst and rho, the pair matrices, and the conventions used), OUT/table1.md, \
      OUT/table1.csv and OUT/table1-full.csv, and with --compare OUT/comparison.md: both models' \
      mean F1, gap and worst, and their paired differences (first minus compared) with intervals \
      from the same bootstrap resamples.

      The scores CSV has a header `image,<the 40 attribute names>` and one row per train and test \
      image (logits or probabilities).

      --bench ignores the files and times the fast paths against one pass per attribute pair on \
      synthetic CelebA-sized data (162,770 train and 19,962 test images unless told otherwise).
      """))

  @Option(help: "CelebA-format attribute file (list_attr_celeba.txt).")
  var attributes: String?

  @Option(help: "CelebA-format partition file (list_eval_partition.txt).")
  var partition: String?

  @Option(help: "Scores CSV covering the test images, and the train images unless --scores-train is given.")
  var scores: String?

  @Option(help: "Scores CSV for the train images, when they are not in --scores.")
  var scoresTrain: String?

  @Option(help: "Output directory.")
  var out: String?

  @Option(help: "Name of the model in the tables (default: the scores file's name).")
  var label: String?

  @Option(help: "Bootstrap resamples of the test images for 95% intervals (0: none; --bench: 1000).")
  var bootstrap: Int?

  @Option(help: "Seed of the bootstrap resamples.")
  var seed: UInt64 = 0

  @Option(help: "Positives of the task each subgroup (c true, c false) of a pair needs for the pair to be used; pairs with fewer are left out and counted (a subgroup without positives has no F1).")
  var minSupport: Int = PairSelection.defaultMinimum

  @Option(help: "Intervals: bounded (allow for the whole bias of the gap and worst; docs/statistics.md), basic (bias-corrected estimate with the basic bootstrap interval) or percentile.")
  var interval: IntervalMethod = .bounded

  @Option(help: "Scores CSV of a second model: its metrics and the paired differences on the same resamples.")
  var compare: String?

  @Option(help: "Train scores of the second model, when they are not in --compare.")
  var compareTrain: String?

  @Flag(help: "Time the fast and the per-pair paths on synthetic data instead of reading files.")
  var bench = false

  @Option(help: "Instead of reading files: measure how often the intervals cover the population value, over this many test sets drawn from a score model with known population values (docs/statistics.md).")
  var coverage: Int?

  @Option(help: "Test images per drawn test set of --coverage.")
  var coverageImages = 19_962

  @Option(help: "The score model of --coverage: celeba-like (correlated attributes, CelebA's rates) or independent (the same rates, independent attributes, gaps from score noise alone; model 1's population gaps all 0).")
  var coverageLayout: CoverageLayout = .celebaLike

  @Option(help: "Test images of the --bench data.")
  var benchTestImages = 19_962

  @Option(help: "Train images of the --bench data.")
  var benchTrainImages = 162_770

  @Option(help: "Resamples the per-pair baseline runs in --bench (default: all; fewer are scaled up).")
  var benchBaselineResamples: Int?

  func validate() throws {
    guard minSupport >= 1 else {
      throw ValidationError("--min-support must be at least 1 (got \(minSupport)): a subgroup without positives has no F1.")
    }
    if let bootstrap, bootstrap < 0 {
      throw ValidationError("--bootstrap cannot be negative (got \(bootstrap)); use 0 for no intervals.")
    }
    if let coverage {
      guard coverage > 0, coverageImages > 0, (bootstrap ?? 1) > 0 else {
        throw ValidationError("--coverage, --coverage-images and --bootstrap must be positive for a coverage simulation.")
      }
      return
    }
    if bench {
      guard benchTestImages > 0, benchTrainImages > 0 else {
        throw ValidationError("--bench-test-images and --bench-train-images must be positive.")
      }
      if let benchBaselineResamples, benchBaselineResamples < 1 {
        throw ValidationError("--bench-baseline-resamples must be at least 1 (got \(benchBaselineResamples)).")
      }
      return
    }
    let missing = [("--attributes", attributes), ("--partition", partition), ("--scores", scores), ("--out", out)]
      .filter { $0.1 == nil }.map(\.0)
    guard missing.isEmpty else {
      throw ValidationError(
        "Missing \(missing.joined(separator: ", ")): the metrics need the attribute, partition and scores files and an output directory."
      )
    }
    if compareTrain != nil && compare == nil {
      throw ValidationError("--compare-train needs --compare: it gives the train scores of the compared model.")
    }
  }

  func run() throws {
    if let coverage { return runCoverage(draws: coverage) }
    if bench { return runBenchmark() }
    guard let attributes, let partition, let scores, let out else { return }
    let attributeFile = try CelebAAttributes(contentsOf: URL(fileURLWithPath: attributes))
    try attributeFile.checkCelebAAttributeCount()
    let partitionFile = try CelebAPartition(contentsOf: URL(fileURLWithPath: partition))
    func splits(_ scores: String, train: String?) throws -> EvaluationSplits {
      try EvaluationSplits(
        attributes: attributeFile, partition: partitionFile,
        scores: ScoreTable(contentsOf: URL(fileURLWithPath: scores)),
        trainScores: train.map { try ScoreTable(contentsOf: URL(fileURLWithPath: $0)) })
    }
    let compared = try compare.map { (name: $0, splits: try splits($0, train: compareTrain)) }
    let resamples = bootstrap ?? 0
    let evaluation = try FairnessEvaluation(
      splits(scores, train: scoresTrain), bootstrap: BootstrapOptions(resamples: resamples, seed: seed, method: interval),
      compared: compared, minimumSupport: minSupport)
    let name = label ?? URL(fileURLWithPath: scores).deletingPathExtension().lastPathComponent
    let result = ModelResult(
      label: name, attributeNames: evaluation.attributeNames, summary: evaluation.model.summary,
      intervals: evaluation.intervals)
    var files: [(name: String, contents: Data)] = [
      ("fairness.json", evaluation.document()),
      ("table1.md", Data(Table1.markdown([result]).utf8)),
      ("table1.csv", Data(Table1.csv([result], paperOnly: true).utf8)),
      ("table1-full.csv", Data(Table1.csv([result], paperOnly: false).utf8)),
    ]
    if evaluation.comparison != nil {
      files.append(("comparison.md", Data(ComparisonTable.markdown(evaluation, label: name).utf8)))
    }
    try OutputFiles.write(files, into: URL(fileURLWithPath: out))
    printSummary(evaluation, out: out, files: files.map(\.name))
  }

  /// The coverage table of every interval method, with the simulation's settings.
  private func runCoverage(draws: Int) {
    let resamples = bootstrap ?? 400
    let start = Date()
    let model = coverageLayout == .independent ? ScoreModel.independent : .celebALike
    let tallies = CoverageSimulation.run(model, draws: draws, images: coverageImages, resamples: resamples, minimumSupport: minSupport, seed: seed)
    print("coverage of nominal 95% intervals: \(draws) test sets of \(coverageImages) images from the 8-attribute \(coverageLayout == .independent ? "independent" : "CelebA-like") score model, \(resamples) bootstrap resamples each, --min-support \(minSupport) (\(String(format: "%.0f", Date().timeIntervalSince(start))) s)")
    print(CoverageSimulation.markdown(tallies, level: 0.95), terminator: "")
    let correlations = CoverageSimulation.trendDifference(model, draws: draws, images: coverageImages, resamples: resamples, minimumSupport: minSupport, seed: seed)
    print("\nFinding (d): the trend of the bias-corrected gap with rho (fitted change from the least to the most balanced condition) of each model minus the trivial predictor's, percentile interval of the paired resamples:\n")
    print("| model | coverage | width | bias |\n|---|---|---|---|")
    for (m, t) in correlations.enumerated() {
      print(String(format: "| model %d - trivial | %.1f%% (%d) | %.3f | %+.4f |", m, 100 * t.rate, t.trials, t.meanWidth, t.bias))
    }
  }

  private func printSummary(_ evaluation: FairnessEvaluation, out: String, files: [String]) {
    let summary = evaluation.model.summary
    print(
      "\(evaluation.trainImages) train images (thresholds), \(evaluation.testImages) test images, \(evaluation.attributeNames.count) attributes"
    )
    for (attribute, threshold) in evaluation.model.thresholds.enumerated() where !threshold.value.isFinite {
      print(
        "note: \(evaluation.attributeNames[attribute]) has no positive train image: no test image is predicted positive for it"
      )
    }
    for (attribute, gap) in summary.gap.enumerated() where gap == nil {
      print(
        "note: \(evaluation.attributeNames[attribute]) is true on every test image or on none: it has no gap or worst and is left out of all"
      )
    }
    let selection = summary.selection
    print(
      "pairs: \(selection.used) used, \(selection.undefined) undefined (a subgroup without positives), \(selection.belowMinimum) below --min-support \(selection.minimum)"
    )
    func withInterval(_ value: Double?, _ interval: Interval??) -> String {
      let text = value.map { String(format: "%.3f", $0) } ?? "n/a"
      guard let interval = interval ?? nil else { return text }
      return text + String(format: " (bias-corrected %.3f [%.3f, %.3f])", interval.estimate, interval.low, interval.high)
    }
    print(
      "all: gap \(withInterval(summary.allGap, evaluation.intervals?.allGap)), worst \(withInterval(summary.allWorst, evaluation.intervals?.allWorst))"
    )
    if let comparison = evaluation.comparison {
      let other = comparison.model.summary
      print(
        "compared with \(comparison.name): mean F1 \(String(format: "%.3f against %.3f", summary.meanF1, other.meanF1)), difference \(withInterval(summary.meanF1 - other.meanF1, comparison.differenceIntervals?.meanF1))"
      )
      if let first = summary.allGap, let second = other.allGap {
        print("  all gap difference \(withInterval(first - second, comparison.differenceIntervals?.allGap))")
      }
      if let first = summary.allWorst, let second = other.allWorst {
        print("  all worst difference \(withInterval(first - second, comparison.differenceIntervals?.allWorst))")
      }
    }
    print("wrote \(files.map { "\(out)/\($0)" }.joined(separator: ", "))")
  }

  private func runBenchmark() {
    let resamples = bootstrap ?? 1000
    let result = FairnessBenchmark.run(
      trainImages: benchTrainImages, testImages: benchTestImages, resamples: resamples,
      baselineResamples: benchBaselineResamples ?? resamples, seed: seed)
    print(
      "synthetic CelebA-like data: \(result.trainImages) train and \(result.testImages) test images, 40 attributes, \(result.cores) cores"
    )
    print(String(format: "thresholds, exact train-F1 sweep:            %8.3f s", result.thresholdSeconds))
    print(
      String(
        format: "1,560 pair counts, popcount on packed bits:  %8.4f s   one pass per pair: %8.3f s (%.0fx)",
        result.countsSeconds, result.baselineCountsSeconds, result.baselineCountsSeconds / result.countsSeconds))
    let scaled = result.baselineResamples < result.resamples ? " (measured on \(result.baselineResamples), scaled)" : ""
    print(
      String(
        format: "bootstrap, %d resamples, weighted counts:  %8.3f s   one pass per pair: %8.3f s (%.0fx)%@",
        result.resamples, result.bootstrapSeconds, result.baselineBootstrapSecondsForAllResamples,
        result.baselineBootstrapSecondsForAllResamples / result.bootstrapSeconds, scaled))
    print("fast and per-pair paths give identical counts and statistics: \(result.agree ? "yes" : "NO")")
  }
}

enum CoverageLayout: String, ExpressibleByArgument, CaseIterable {
  case celebaLike = "celeba-like"
  case independent
}

// `fairtune report`: Table 1, Figure 1, the timing table and an offline HTML page from run directories.
import ArgumentParser
import CelebAFormat
import Fairness
import Foundation
import Report

struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Table 1, Figure 1 and the training-time table from run directories.",
    discussion: paragraphs("""
      Each RUN holds run.json (strategy, updated_parameters, updated_buffers, training_seconds and \
      optionally data: {attributes, partition}) and scores.csv (`image,<40 attribute names>`, a \
      row per train and test image). Writes OUT/table1.md, OUT/table1.csv, OUT/table1-full.csv, \
      OUT/figure1.svg, OUT/heatmap.svg, OUT/timing.md and OUT/index.html (open it in a browser; \
      it needs no network). Beside the models, Table 1, Figure 1 and the mean F1 table show the \
      trivial predictor (every image positive, thresholds from train) and, with --probe, the \
      linear probe on a random backbone; a model within 0.05 test mean F1 of the trivial \
      predictor is flagged.
      """))

  @Option(parsing: .upToNextOption, help: "Run directories, one per model.")
  var runs: [String] = []

  @Option(help: "Output directory.")
  var out: String

  @Option(help: "CelebA-format attribute file for every run (overrides run.json's data).")
  var attributes: String?

  @Option(help: "CelebA-format partition file for every run (overrides run.json's data).")
  var partition: String?

  @Option(parsing: .upToNextOption, help: "More runs of the same strategies with other seeds: Table 1 and Figure 1 keep one run per strategy, findings.md shows the spread over seeds.")
  var seedRuns: [String] = []

  @Option(help: "A linear probe (strategy frozen) on a randomly initialised backbone, compared with the frozen run in findings.md.")
  var probe: String?

  @Option(help: "The pretraining run: its loss curve goes to pretrain-loss.svg.")
  var pretrain: String?

  @Option(parsing: .upToNextOption, help: "Markdown files added to the report as they are (e.g. bn-statistics.md).")
  var include: [String] = []

  @Option(help: "Each strategy's time per epoch measured side by side (JSON: strategy -> seconds, as `fairtune reproduce` writes to analysis/epoch-times.json): timing.md and finding (e) give both ratios.")
  var epochTimes: String?

  @Flag(help: "Write findings.md: the paper's findings checked on these runs (needs one run per strategy; best with --bootstrap).")
  var findings = false

  @Option(help: "Bootstrap resamples of the test images for 95% intervals (0: none).")
  var bootstrap = 0

  @Option(help: "Seed of the bootstrap resamples.")
  var seed: UInt64 = 0

  @Option(help: "Positives of the task each subgroup (c true, c false) of a pair needs for the pair to be used (pairs with fewer are left out and counted).")
  var minSupport: Int = PairSelection.defaultMinimum

  func validate() throws {
    guard minSupport >= 1 else {
      throw ValidationError("--min-support must be at least 1 (got \(minSupport)): a subgroup without positives has no F1.")
    }
    guard !runs.isEmpty else {
      throw ValidationError("Pass at least one run directory with --runs DIR...")
    }
    guard (attributes == nil) == (partition == nil) else {
      throw ValidationError("Pass --attributes and --partition together: they are the two label files of one dataset.")
    }
    guard bootstrap >= 0 else {
      throw ValidationError("--bootstrap cannot be negative (got \(bootstrap)); use 0 for no intervals.")
    }
  }

  func run() throws {
    let evaluated = try ReportBuilder.evaluate(
      runs: runs.map { URL(fileURLWithPath: $0) }, attributes: attributes.map { URL(fileURLWithPath: $0) },
      partition: partition.map { URL(fileURLWithPath: $0) },
      bootstrap: BootstrapOptions(resamples: bootstrap, seed: seed), minimumSupport: minSupport)
    let url = { (path: String) in URL(fileURLWithPath: path) }
    let options = BootstrapOptions(resamples: bootstrap, seed: seed)
    func others(_ paths: [String]) throws -> [EvaluatedRun] {
      paths.isEmpty
        ? [] : try ReportBuilder.evaluate(runs: paths.map(url), attributes: attributes.map(url), partition: partition.map(url), bootstrap: nil, minimumSupport: minSupport)
    }
    // The baselines beside the models: the trivial predictor on the first run's data, and the
    // random-backbone probe when given.
    let trivial = try ReportBuilder.trivialBaseline(
      like: url(runs[0]), attributes: attributes.map(url), partition: partition.map(url), bootstrap: options, minimumSupport: minSupport)
    let probeRun = try probe.map {
      try ReportBuilder.evaluate(runs: [url($0)], attributes: attributes.map(url), partition: partition.map(url), bootstrap: options, minimumSupport: minSupport)[0]
    }
    let baselines = [trivial] + (probeRun.map { [Baseline(probe: $0)] } ?? [])
    let perEpoch = try epochTimes.map { try EpochTimes(contentsOf: url($0)) }
    var sections: [ReportSection] = []
    if let pretrain {
      let points = try LossCurve.points(metrics: url(pretrain + "/metrics.jsonl"))
      sections.append(ReportSection(title: "Pretraining", file: "pretrain-loss.svg", contents: LossCurve.svg(points)))
    }
    if findings {
      let text = Findings.markdown(
        main: evaluated, seedRuns: try others(seedRuns), probe: probeRun, trivial: trivial, bootstrap: options, epochTimes: perEpoch)
      sections.append(ReportSection(title: "Findings", file: "findings.md", contents: text))
    }
    for path in include {
      guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("--include \(path): cannot read it.") }
      let title = text.split(separator: "\n").first.map { $0.hasPrefix("# ") ? String($0.dropFirst(2)) : String($0) } ?? path
      sections.append(ReportSection(title: title, file: (path as NSString).lastPathComponent, contents: text))
    }
    let files = ReportBuilder.files(evaluated, baselines: baselines, sections: sections, epochTimes: perEpoch)
    try OutputFiles.write(files, into: URL(fileURLWithPath: out))
    for (label, summary) in evaluated.map({ ($0.label, $0.evaluation.model.summary) }) + baselines.map({ ($0.label, $0.evaluation.model.summary) }) {
      print(String(format: "%@: test mean F1 %.3f, all gap %.3f, worst %.3f", label, summary.meanF1, summary.allGap ?? .nan, summary.allWorst ?? .nan))
    }
    print("wrote \(files.map { "\(out)/\($0.name)" }.joined(separator: ", "))")
  }
}

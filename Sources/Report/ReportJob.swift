// A report as a job: run directories in, every file of the report out (Table 1, Figure 1, the
// timing table, findings, included sections, the HTML index). `fairtune report` and
// reproduce's report stage run it.
import Experiment
import Fairness
import Foundation

/// A file the report was asked to include that cannot be read.
public struct ReportInputError: Error, CustomStringConvertible {
  public let description: String
}

public struct ReportJob {
  /// Run directories, one per model.
  public var runs: [String]
  /// Output directory.
  public var out: String
  /// A CelebA-format attribute and partition file for every run (overriding run.json's data).
  public var attributes: String?
  public var partition: String?
  /// More runs of the same strategies with other seeds (findings.md shows their spread).
  public var seedRuns: [String] = []
  /// Each main run's converged head (its backbone as it left it, the head solved by L-BFGS):
  /// a second column beside the search's in Table 1, the mean F1 table and the findings.
  public var convergedRuns: [String] = []
  /// The runs of every further pretrained backbone (one list per backbone, a run per strategy at
  /// its selected settings): findings.md states each pairwise finding per backbone and across.
  public var backboneRuns: [[String]] = []
  /// The linear probe on a randomly initialised backbone.
  public var probe: String?
  /// The pretraining run, whose loss curve goes to pretrain-loss.svg.
  public var pretrain: String?
  /// Markdown files added to the report as they are.
  public var include: [String] = []
  /// Each strategy's time per epoch measured side by side (epoch-times.json).
  public var epochTimes: String?
  /// Write findings.md.
  public var findings = false
  public var bootstrap = BootstrapOptions(resamples: 0, seed: 0)
  public var minimumSupport = PairSelection.defaultMinimum
  /// A paragraph that opens the report and its findings (reproduce: the pretraining recipe
  /// and how it departs from the paper's).
  public var preface: String?

  public init(runs: [String], out: String) {
    self.runs = runs
    self.out = out
  }

  /// Writes the report into `out`; returns the lines that summarise it for people (each model's
  /// and baseline's test mean F1, all gap and worst, then the files written).
  public func run() throws -> [String] {
    let url = { (path: String) in URL(fileURLWithPath: path) }
    let attributes = self.attributes.map(url)
    let partition = self.partition.map(url)
    let evaluated = try ReportBuilder.evaluate(
      runs: runs.map(url), attributes: attributes, partition: partition, bootstrap: bootstrap, minimumSupport: minimumSupport)
    func others(_ paths: [String]) throws -> [EvaluatedRun] {
      paths.isEmpty
        ? [] : try ReportBuilder.evaluate(runs: paths.map(url), attributes: attributes, partition: partition, bootstrap: nil, minimumSupport: minimumSupport)
    }
    // The baselines beside the models: the trivial predictor on the first run's data, and the
    // random-backbone probe when given.
    let trivial = try ReportBuilder.trivialBaseline(
      like: url(runs[0]), attributes: attributes, partition: partition, bootstrap: bootstrap, minimumSupport: minimumSupport)
    let probeRun = try probe.map {
      try ReportBuilder.evaluate(runs: [url($0)], attributes: attributes, partition: partition, bootstrap: bootstrap, minimumSupport: minimumSupport)[0]
    }
    let baselines = [trivial] + (probeRun.map { [Baseline(probe: $0)] } ?? [])
    let perEpoch = try epochTimes.map { try EpochTimes(contentsOf: url($0)) }
    var sections: [ReportSection] = []
    if let pretrain {
      let metrics = url(pretrain + "/metrics.jsonl")
      let svg = LossCurve.svg(try LossCurve.points(metrics: metrics), monitor: try LossCurve.monitor(metrics: metrics))
      sections.append(ReportSection(title: "Pretraining", file: "pretrain-loss.svg", contents: svg))
    }
    let converged = convergedRuns.isEmpty
      ? [] : try ReportBuilder.evaluate(runs: convergedRuns.map(url), attributes: attributes, partition: partition, bootstrap: bootstrap, minimumSupport: minimumSupport)
    if findings {
      let backbones = try backboneRuns.map {
        try ReportBuilder.evaluate(runs: $0.map(url), attributes: attributes, partition: partition, bootstrap: nil, minimumSupport: minimumSupport)
      }
      var text = Findings.markdown(
        main: evaluated, seedRuns: try others(seedRuns), probe: probeRun, trivial: trivial, bootstrap: bootstrap, epochTimes: perEpoch,
        backbones: backbones)
      text += Findings.acrossBackbones([evaluated] + backbones, bootstrap: bootstrap)
      if !converged.isEmpty {
        let again = Findings.markdown(main: converged, seedRuns: [], probe: nil, trivial: trivial, bootstrap: bootstrap, times: false)
        text += "\n## Under the converged head\n\nThe same findings with every selected model's head solved to convergence (L-BFGS on the features of its own backbone, weights and running statistics as the strategy left them): what the statistics and the backbone do apart from what the head's optimizer did.\n\n"
          + again.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("## The paper") }.dropFirst()
            .joined(separator: "\n")
      }
      sections.append(ReportSection(title: "Findings", file: "findings.md", contents: preface.map { Self.inserting($0, afterTitleOf: text) } ?? text))
    }
    for path in include {
      guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ReportInputError(description: "--include \(path): cannot read it.") }
      let title = text.split(separator: "\n").first.map { $0.hasPrefix("# ") ? String($0.dropFirst(2)) : String($0) } ?? path
      sections.append(ReportSection(title: title, file: (path as NSString).lastPathComponent, contents: text))
    }
    let files = ReportBuilder.files(evaluated, converged: converged, baselines: baselines, sections: sections, epochTimes: perEpoch, preface: preface)
    try OutputFiles.write(files, into: URL(fileURLWithPath: out))
    let summaries = (evaluated + converged).map { ($0.label, $0.evaluation.model.summary) } + baselines.map { ($0.label, $0.evaluation.model.summary) }
    return summaries.map { label, summary in
      String(format: "%@: test mean F1 %.3f, all gap %.3f, worst %.3f", label, summary.meanF1, summary.allGap ?? .nan, summary.allWorst ?? .nan)
    } + ["wrote \(files.map { "\(out)/\($0.name)" }.joined(separator: ", "))"]
  }

  /// `paragraph` after the first line of `markdown` when that is a title, else before it.
  static func inserting(_ paragraph: String, afterTitleOf markdown: String) -> String {
    guard markdown.hasPrefix("# "), let end = markdown.firstIndex(of: "\n") else { return paragraph + "\n\n" + markdown }
    return String(markdown[..<end]) + "\n\n" + paragraph + "\n" + markdown[end...]
  }
}

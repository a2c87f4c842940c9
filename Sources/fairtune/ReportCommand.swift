// `fairtune report`: Table 1, Figure 1, the timing table and an offline HTML page from run
// directories. The options are checked here and parsed into a ReportJob (Report).
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

  /// The job these options describe.
  var job: ReportJob {
    var job = ReportJob(runs: runs, out: out)
    job.attributes = attributes
    job.partition = partition
    job.seedRuns = seedRuns
    job.probe = probe
    job.pretrain = pretrain
    job.include = include
    job.epochTimes = epochTimes
    job.findings = findings
    job.bootstrap = BootstrapOptions(resamples: bootstrap, seed: seed)
    job.minimumSupport = minSupport
    return job
  }

  func run() throws {
    let lines: [String]
    do { lines = try job.run() } catch let error as ReportInputError { throw ValidationError(error.description) }
    for line in lines { print(line) }
  }
}

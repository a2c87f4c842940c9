// `fairtune report`: Table 1, Figure 1, the timing table and an offline HTML page from run directories.
import ArgumentParser
import Fairness
import Foundation
import Report

struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Table 1, Figure 1 and the training-time table from run directories.",
    discussion: """
      Each RUN holds run.json (strategy, updated_parameters, updated_buffers, training_seconds and \
      optionally data: {attributes, partition}) and scores.csv (`image,<40 attribute names>`, a \
      row per train and test image). Writes OUT/table1.md, OUT/table1.csv, OUT/table1-full.csv, \
      OUT/figure1.svg, OUT/timing.md and OUT/index.html (open it in a browser; it needs no \
      network).
      """)

  @Option(parsing: .upToNextOption, help: "Run directories, one per model.")
  var runs: [String] = []

  @Option(help: "Output directory.")
  var out: String

  @Option(help: "CelebA-format attribute file for every run (overrides run.json's data).")
  var attributes: String?

  @Option(help: "CelebA-format partition file for every run (overrides run.json's data).")
  var partition: String?

  @Option(help: "Bootstrap resamples of the test images for 95% intervals (0: none).")
  var bootstrap = 0

  @Option(help: "Seed of the bootstrap resamples.")
  var seed: UInt64 = 0

  func validate() throws {
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
      bootstrap: BootstrapOptions(resamples: bootstrap, seed: seed))
    let files = ReportBuilder.files(evaluated)
    try OutputFiles.write(files, into: URL(fileURLWithPath: out))
    for run in evaluated {
      let summary = run.evaluation.model.summary
      print(String(format: "%@: all gap %.3f, worst %.3f", run.label, summary.allGap ?? .nan, summary.allWorst ?? .nan))
    }
    print("wrote \(files.map { "\(out)/\($0.name)" }.joined(separator: ", "))")
  }
}

// timing.md: training time per model and the two ratios the paper quotes.
import Foundation

public enum TimingTable {
  /// The paper's whole-training ratios: supervised / bn-stats (4.4x) and full / bn-stats-skip
  /// (1.33x).
  static let ratios: [(numerator: Strategy, denominator: Strategy, paper: String)] = [
    (.supervised, .bnStats, "4.4x"),
    (.full, .bnStatsSkip, "1.33x"),
  ]

  /// `runs` in report order with their labels; a ratio uses the first run of each strategy.
  public static func markdown(_ runs: [(label: String, record: RunRecord)]) -> String {
    let table = TextTable(
      header: ["model", "strategy", "training time", "seconds", "updated parameters", "updated buffers"],
      rows: runs.map { run in
        [
          run.label, run.record.strategy.rawValue, duration(run.record.trainingSeconds),
          String(format: "%.1f", run.record.trainingSeconds), grouped(run.record.updatedParameters),
          grouped(run.record.updatedBuffers),
        ]
      })
    var text = "# Training time\n\n" + table.markdown + "\n## Ratios\n\n"
    for ratio in ratios {
      let name = "\(ratio.numerator.rawValue) / \(ratio.denominator.rawValue)"
      let numerator = runs.first { $0.record.strategy == ratio.numerator }?.record.trainingSeconds
      let denominator = runs.first { $0.record.strategy == ratio.denominator }?.record.trainingSeconds
      if let numerator, let denominator, denominator > 0 {
        text += String(format: "- %@: %.2fx (paper: %@)\n", name, numerator / denominator, ratio.paper)
      } else {
        let missing = [ratio.numerator, ratio.denominator].filter { strategy in
          !runs.contains { $0.record.strategy == strategy }
        }
        let reason =
          missing.isEmpty
          ? "the \(ratio.denominator.rawValue) run took 0 s"
          : "no \(missing.map(\.rawValue).joined(separator: " or ")) run"
        text += "- \(name): n/a (\(reason); paper: \(ratio.paper))\n"
      }
    }
    return text
  }

  /// 1:02:03 for an hour, 2 minutes and 3 seconds; 4.2 s below a minute.
  static func duration(_ seconds: Double) -> String {
    guard seconds >= 60 else { return String(format: "%.1f s", seconds) }
    let whole = Int(seconds.rounded())
    return String(format: "%d:%02d:%02d", whole / 3600, whole / 60 % 60, whole % 60)
  }
}

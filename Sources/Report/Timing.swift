// timing.md: training time per model and the two ratios the paper quotes, for the selected
// models' whole training and per epoch measured side by side.
import CelebAFormat
import Experiment
import Fairness
import Foundation

/// Each strategy's training time per epoch, measured side by side: the same data, batch and
/// settings, a few steps each (see `fairtune reproduce`'s epoch-times stage).
public struct EpochTimes: Sendable, Equatable {
  public var seconds: [Strategy: Double]
  /// How each figure was made, for frozen and bn-recal (whose epochs run on a feature table).
  public static let frozenNote =
    "frozen's and bn-recal's epochs run the head on a feature table made once: their figure is an epoch of head steps plus that table's forward pass over every image (and for bn-recal its pass over the train images before)"

  public init(seconds: [Strategy: Double]) {
    self.seconds = seconds
  }

  /// The seconds per epoch of a run of `steps` measured steps: the median step time (the first
  /// step left out, as warm-up) times `stepsPerEpoch`; for a strategy with a fixed backbone, plus
  /// the passes it makes once (its feature table, and bn-recal's pass), from run.json.
  public static func perEpoch(run: URL, strategy: Strategy, stepsPerEpoch: Int) throws -> Double {
    var once = 0.0
    if strategy.hasFixedBackbone {
      let file = try RunFile.decode(Data(contentsOf: run.appendingPathComponent("run.json")))
      once = (file.featureTable?.seconds ?? 0) + (file.recalibration?.seconds ?? 0)
    }
    let metrics = run.appendingPathComponent("metrics.jsonl")
    let text = try String(contentsOf: metrics, encoding: .utf8)
    let steps = text.split(separator: "\n").compactMap { line -> Double? in
      guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any], (object["step"] as? Int ?? 0) > 1 else { return nil }
      return (object["step_seconds"] as? NSNumber)?.doubleValue
    }
    guard let median = median(steps) else {
      throw InputError(file: metrics.path, line: nil, "has no timed step after the first; measure at least two steps.")
    }
    return median * Double(stepsPerEpoch) + once
  }

  /// epoch-times.json: {"strategy": seconds per epoch, ...}.
  public var json: Data {
    let object = Dictionary(uniqueKeysWithValues: seconds.map { ($0.key.rawValue, $0.value) })
    return (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
  }

  public init(contentsOf url: URL) throws {
    guard let object = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any] else {
      throw InputError(file: url.path, line: nil, "is not a JSON object of strategy -> seconds per epoch.")
    }
    var seconds: [Strategy: Double] = [:]
    for (key, value) in object {
      guard let strategy = Strategy(rawValue: key), let number = (value as? NSNumber)?.doubleValue, number.isFinite, number >= 0 else {
        throw InputError(file: url.path, line: nil, "'\(key)' is not a strategy with a number of seconds.")
      }
      seconds[strategy] = number
    }
    self.init(seconds: seconds)
  }
}

public enum TimingTable {
  /// The paper's whole-training ratios: supervised / bn-stats (4.4x) and full / bn-stats-skip
  /// (1.33x).
  static let ratios: [(numerator: Strategy, denominator: Strategy, paper: String)] = [
    (.supervised, .bnStats, "4.4x"),
    (.full, .bnStatsSkip, "1.33x"),
  ]

  /// `runs` in report order with their labels; a ratio uses the first run of each strategy.
  public static func markdown(_ runs: [(label: String, record: RunRecord)], epochTimes: EpochTimes? = nil) -> String {
    // A precision column only when some run is not fp32 (times in two precisions differ in kind).
    let mixed = runs.contains { $0.record.precision != "fp32" }
    let table = TextTable(
      header: ["model", "strategy", "training time", "seconds", "updated parameters", "updated buffers"] + (mixed ? ["precision"] : []),
      rows: runs.map { run in
        [
          run.label, run.record.strategy.rawValue, duration(run.record.trainingSeconds),
          String(format: "%.1f", run.record.trainingSeconds), grouped(run.record.updatedParameters),
          grouped(run.record.updatedBuffers),
        ] + (mixed ? [run.record.precision] : [])
      })
    var text = "# Training time\n\n" + table.markdown + "\n## Ratios of the selected models' whole training\n\n"
    text += "Each model's time is its own trial's: the epochs the search drew as much as the work per epoch. It counts everything the run used: its steps, and for frozen and bn-recal the feature table's pass over every image and bn-recal's pass over the train images, whether this run made them or an earlier trial did.\n\n"
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
    if let epochTimes {
      text += "\n## Time per epoch, measured side by side\n\n"
      text += "Every strategy for the same steps on the same data and batch, in one run: the median step time times the steps of an epoch. \(EpochTimes.frozenNote).\n\n"
      let rows = Strategy.allCases.compactMap { strategy in
        epochTimes.seconds[strategy].map { [strategy.rawValue, duration($0), String(format: "%.1f", $0)] }
      }
      text += TextTable(header: ["strategy", "per epoch", "seconds"], rows: rows).markdown + "\n"
      for ratio in ratios {
        let name = "\(ratio.numerator.rawValue) / \(ratio.denominator.rawValue)"
        if let a = epochTimes.seconds[ratio.numerator], let b = epochTimes.seconds[ratio.denominator], b > 0 {
          text += String(format: "- %@ per epoch: %.2fx (paper, whole training: %@)\n", name, a / b, ratio.paper)
        }
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

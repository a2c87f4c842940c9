// `fairtune report`: runs in, Table 1, Figure 1, the timing table and the HTML index out.
import CelebAFormat
import Experiment
import Fairness
import Foundation

/// A run with its evaluation, under the label it has in every table and figure.
public struct EvaluatedRun: Sendable {
  public let label: String
  public let record: RunRecord
  public let evaluation: FairnessEvaluation

  public var result: ModelResult {
    ModelResult(
      label: label, attributeNames: evaluation.attributeNames, summary: evaluation.model.summary,
      intervals: evaluation.intervals)
  }

  public var figureModel: FigureModel {
    FigureModel(
      label: label, updatedParameters: record.updatedParameters, updatedBuffers: record.updatedBuffers,
      pairWorst: evaluation.model.summary.pairWorst.compactMap { $0 })
  }
}

/// A reference point beside the models: the trivial predictor, or the linear probe on a randomly
/// initialised backbone.
public struct Baseline: Sendable {
  public let label: String
  public let evaluation: FairnessEvaluation
  public let updatedParameters: Int
  public let updatedBuffers: Int

  public init(label: String, evaluation: FairnessEvaluation, updatedParameters: Int = 0, updatedBuffers: Int = 0) {
    self.label = label
    self.evaluation = evaluation
    self.updatedParameters = updatedParameters
    self.updatedBuffers = updatedBuffers
  }

  /// The linear probe on a random backbone, from its run.
  public init(probe: EvaluatedRun) {
    self.init(
      label: Baseline.probeLabel, evaluation: probe.evaluation, updatedParameters: probe.record.updatedParameters,
      updatedBuffers: probe.record.updatedBuffers)
  }

  /// Short, as they label Figure 1's bars; the tables say what they are.
  public static let trivialLabel = "trivial"
  public static let probeLabel = "random probe"

  public var result: ModelResult {
    ModelResult(label: label, attributeNames: evaluation.attributeNames, summary: evaluation.model.summary, intervals: evaluation.intervals)
  }

  public var figureModel: FigureModel {
    FigureModel(
      label: label, updatedParameters: updatedParameters, updatedBuffers: updatedBuffers,
      pairWorst: evaluation.model.summary.pairWorst.compactMap { $0 })
  }
}

public enum ReportBuilder {
  /// The trivial predictor on the dataset of `run`: every image scored alike, so the thresholds
  /// from train predict every image positive for each attribute that has a train positive (the
  /// F1-maximising constant prediction). A model near its mean F1 has learned little, whatever
  /// its fairness figures say.
  public static func trivialBaseline(
    like run: URL, attributes: URL?, partition: URL?, bootstrap: BootstrapOptions?, minimumSupport: Int = PairSelection.defaultMinimum
  ) throws -> Baseline {
    let record = try RunRecord(directory: run)
    let splits = try self.splits(record, attributes: attributes, partition: partition)
    func constant(_ split: LabeledScores) -> LabeledScores {
      LabeledScores(attributeNames: split.attributeNames, images: split.images, labels: split.labels, scores: split.scores.map { _ in 0 })
    }
    let trivial = EvaluationSplits(train: constant(splits.train), test: constant(splits.test))
    return Baseline(label: Baseline.trivialLabel, evaluation: try FairnessEvaluation(trivial, bootstrap: bootstrap, minimumSupport: minimumSupport))
  }

  /// The label files read so far, by path: runs of one dataset share them.
  final class LabelFiles {
    var attributes: [URL: CelebAAttributes] = [:]
    var partitions: [URL: CelebAPartition] = [:]
  }

  /// A run's train and test splits joined from its files (`attributes` and `partition` override
  /// the files its run.json names).
  static func splits(_ record: RunRecord, attributes: URL?, partition: URL?, files cache: LabelFiles = LabelFiles()) throws -> EvaluationSplits {
    guard let attributesURL = attributes ?? record.attributesFile, let partitionURL = partition ?? record.partitionFile else {
      throw InputError(
        file: record.directory.appendingPathComponent("run.json").path, line: nil, "names no dataset (\"data\"); pass --attributes and --partition.")
    }
    let attributeFile = try cache.attributes[attributesURL] ?? CelebAAttributes(contentsOf: attributesURL)
    try attributeFile.checkCelebAAttributeCount()
    cache.attributes[attributesURL] = attributeFile
    let partitionFile = try cache.partitions[partitionURL] ?? CelebAPartition(contentsOf: partitionURL)
    cache.partitions[partitionURL] = partitionFile
    let files = record.scoresFiles
    return try EvaluationSplits(
      attributes: attributeFile, partition: partitionFile, scores: ScoreTable(contentsOf: files.scores),
      trainScores: try files.train.map { try ScoreTable(contentsOf: $0) })
  }

  /// Reads and evaluates each run. `attributes` and `partition` override the files named in a
  /// run's run.json and are needed for runs that name none. Runs are ordered by strategy
  /// (frozen ... supervised), and labelled by strategy (a balanced bn-recal as "bn-recal balanced
  /// on ATTR"), with the directory name added when several runs share a label.
  public static func evaluate(
    runs: [URL], attributes: URL?, partition: URL?, bootstrap: BootstrapOptions?, minimumSupport: Int = PairSelection.defaultMinimum
  ) throws -> [EvaluatedRun] {
    let records = try runs.map(RunRecord.init(directory:))
      .enumerated()
      .sorted { ($0.element.strategy.order, $0.offset) < ($1.element.strategy.order, $1.offset) }
      .map(\.element)
    let cache = LabelFiles()
    return try records.map { record in
      let splits = try self.splits(record, attributes: attributes, partition: partition, files: cache)
      let shared = records.filter { $0.name == record.name }.count > 1
      let label = shared ? "\(record.name) (\(record.directory.lastPathComponent))" : record.name
      return EvaluatedRun(
        label: label, record: record, evaluation: try FairnessEvaluation(splits, bootstrap: bootstrap, minimumSupport: minimumSupport))
    }
  }

  /// table1.md, table1.csv, table1-full.csv, figure1.svg, heatmap.svg, timing.md and index.html.
  /// `heatMapModel` is the index in `runs` of the model heatmap.svg shows (nil:
  /// HeatMap.defaultModel).
  public static func files(
    _ runs: [EvaluatedRun], converged: [EvaluatedRun] = [], baselines: [Baseline] = [], sections: [ReportSection] = [],
    heatMapModel: Int? = nil, epochTimes: EpochTimes? = nil, preface: String? = nil
  ) -> [(name: String, contents: Data)] {
    // The tables give each model's converged head beside it; Figure 1 and the timing show the
    // models as the search trained them.
    let results = runs.flatMap { run in [run.result] + converged.filter { $0.record.variant == run.record.variant }.map(\.result) }
      + baselines.map(\.result)
    let timing = runs.map { (label: $0.label, record: $0.record) }
    let figure = Figure1.svg(runs.map(\.figureModel) + baselines.map(\.figureModel))
    let heatMap = (heatMapModel ?? HeatMap.defaultModel(runs)).map { index in
      let run = runs[index]
      return HeatMap.figure(
        label: run.label, names: run.evaluation.attributeNames, summary: run.evaluation.model.summary,
        counts: PairCounts.count(run.evaluation.model.outcomes))
    }
    var files: [(name: String, contents: String)] = [
      ("table1.md", Table1.markdown(results)),
      ("table1.csv", Table1.csv(results, paperOnly: true)),
      ("table1-full.csv", Table1.csv(results, paperOnly: false)),
      ("figure1.svg", figure),
      ("timing.md", TimingTable.markdown(timing, epochTimes: epochTimes)),
    ] + sections.map { ($0.file, $0.contents) }
    if let heatMap { files.append(("heatmap.svg", heatMap.svg)) }
    let index = IndexPage.html(
      title: "fairtune report: \(runs.count) model\(runs.count == 1 ? "" : "s")", figure: figure, models: results,
      timing: timing, files: files.map(\.name), sections: sections, heatMap: heatMap, epochTimes: epochTimes, preface: preface)
    files.append(("index.html", index))
    return files.map { ($0.name, Data($0.contents.utf8)) }
  }
}

extension Strategy {
  /// The position in tables and figures: the strategies from fewest to most updated values, then
  /// the supervised baseline.
  var order: Int { Strategy.allCases.firstIndex(of: self) ?? 0 }
}

// `fairtune report`: runs in, Table 1, Figure 1, the timing table and the HTML index out.
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

public enum ReportBuilder {
  /// Reads and evaluates each run. `attributes` and `partition` override the files named in a
  /// run's run.json and are needed for runs that name none. Runs are ordered by strategy
  /// (frozen ... supervised), and labelled by strategy, with the directory name added when
  /// several runs share a strategy.
  public static func evaluate(
    runs: [URL], attributes: URL?, partition: URL?, bootstrap: BootstrapOptions?, minimumSupport: Int = PairSelection.defaultMinimum
  ) throws -> [EvaluatedRun] {
    let records = try runs.map(RunRecord.init(directory:))
      .enumerated()
      .sorted { ($0.element.strategy.order, $0.offset) < ($1.element.strategy.order, $1.offset) }
      .map(\.element)
    var attributeFiles: [URL: CelebAAttributes] = [:]
    var partitionFiles: [URL: CelebAPartition] = [:]
    return try records.map { record in
      guard let attributesURL = attributes ?? record.attributesFile,
        let partitionURL = partition ?? record.partitionFile
      else {
        throw InputError(
          file: record.directory.appendingPathComponent("run.json").path, line: nil,
          "names no dataset (\"data\"); pass --attributes and --partition.")
      }
      let attributeFile = try attributeFiles[attributesURL] ?? CelebAAttributes(contentsOf: attributesURL)
      try attributeFile.checkCelebAAttributeCount()
      attributeFiles[attributesURL] = attributeFile
      let partitionFile = try partitionFiles[partitionURL] ?? CelebAPartition(contentsOf: partitionURL)
      partitionFiles[partitionURL] = partitionFile
      let files = record.scoresFiles
      let splits = try EvaluationSplits(
        attributes: attributeFile, partition: partitionFile, scores: ScoreTable(contentsOf: files.scores),
        trainScores: try files.train.map { try ScoreTable(contentsOf: $0) })
      let shared = records.filter { $0.strategy == record.strategy }.count > 1
      let label =
        shared ? "\(record.strategy.rawValue) (\(record.directory.lastPathComponent))" : record.strategy.rawValue
      return EvaluatedRun(
        label: label, record: record, evaluation: try FairnessEvaluation(splits, bootstrap: bootstrap, minimumSupport: minimumSupport))
    }
  }

  /// table1.md, table1.csv, table1-full.csv, figure1.svg, heatmap.svg, timing.md and index.html.
  /// `heatMapModel` is the index in `runs` of the model heatmap.svg shows (nil:
  /// HeatMap.defaultModel).
  public static func files(
    _ runs: [EvaluatedRun], sections: [ReportSection] = [], heatMapModel: Int? = nil
  ) -> [(name: String, contents: Data)] {
    let results = runs.map(\.result)
    let timing = runs.map { (label: $0.label, record: $0.record) }
    let figure = Figure1.svg(runs.map(\.figureModel))
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
      ("timing.md", TimingTable.markdown(timing)),
    ] + sections.map { ($0.file, $0.contents) }
    if let heatMap { files.append(("heatmap.svg", heatMap.svg)) }
    let index = IndexPage.html(
      title: "fairtune report: \(runs.count) model\(runs.count == 1 ? "" : "s")", figure: figure, models: results,
      timing: timing, files: files.map(\.name), sections: sections, heatMap: heatMap)
    files.append(("index.html", index))
    return files.map { ($0.name, Data($0.contents.utf8)) }
  }
}

extension Strategy {
  /// The position in tables and figures: the strategies from fewest to most updated values, then
  /// the supervised baseline.
  var order: Int { Strategy.allCases.firstIndex(of: self) ?? 0 }
}

// `fairtune report` from six run directories: tables, timing ratios, and that figure1.svg,
// heatmap.svg and index.html parse as XML; the Markdown renderer, Table 1's layout in index.html
// and the heat map's marks; and the run-directory contract's errors.
import CelebAFormat
import Experiment
import Fairness
import Foundation
import XCTest

@testable import Report

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// Counts elements by name, the most cells in a table row, and remembers external references
/// while parsing.
final class ElementCounter: NSObject, XMLParserDelegate {
  var counts: [String: Int] = [:]
  var root: String?
  var externalReferences: [String] = []
  var widestRow = 0
  private var rowCells = 0

  func parser(
    _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
    attributes: [String: String] = [:]
  ) {
    if root == nil { root = elementName }
    counts[elementName, default: 0] += 1
    for (name, value) in attributes where (name == "src" || name == "href") && value.contains(":") {
      externalReferences.append(value)
    }
    if elementName == "tr" { rowCells = 0 }
    if elementName == "td" || elementName == "th" { rowCells += 1 }
  }

  func parser(
    _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?
  ) {
    if elementName == "tr" { widestRow = max(widestRow, rowCells) }
  }
}

/// The fill and tooltip of every <rect> with a <title> in an SVG, and the `d` of every <path>
/// filled with a pattern.
final class SVGCells: NSObject, XMLParserDelegate {
  var cells: [(title: String, fill: String)] = []
  var patternPaths: [String] = []
  private var rectFill: String?
  private var title: String?

  func parser(
    _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
    attributes: [String: String] = [:]
  ) {
    switch elementName {
    case "rect": rectFill = attributes["fill"]
    case "title": title = ""
    case "path" where attributes["fill"]?.hasPrefix("url(#") == true: patternPaths.append(attributes["d"] ?? "")
    default: break
    }
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) {
    title? += string
  }

  func parser(
    _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?
  ) {
    if elementName == "title", let title, let rectFill { cells.append((title, rectFill)) }
    if elementName == "title" { title = nil }
    if elementName == "rect" { rectFill = nil }
  }
}

func parseXML(_ url: URL) throws -> ElementCounter {
  let parser = try XCTUnwrap(XMLParser(contentsOf: url))
  let counter = ElementCounter()
  parser.delegate = counter
  XCTAssertTrue(parser.parse(), "\(url.lastPathComponent): \(String(describing: parser.parserError))")
  return counter
}

final class ReportTests: XCTestCase {
  var directory: URL!

  override func setUpWithError() throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("report-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: directory)
  }

  /// A CelebA-format dataset of `train` + `test` synthetic images, written to `data/`.
  func writeDataset(train: Int, test: Int) throws -> (attributes: URL, partition: URL, splits: LabeledScores) {
    let all = SyntheticScores.split(imageCount: train + test, seed: 4)
    let names = all.attributeNames
    var attributes = "\(all.imageCount)\n" + names.joined(separator: " ") + "\n"
    var partition = ""
    for image in 0..<all.imageCount {
      let labels = (0..<names.count).map { all.labels[image * names.count + $0] ? " 1" : "-1" }
      attributes += all.images[image] + " " + labels.joined(separator: " ") + "\n"
      partition += all.images[image] + (image < train ? " 0\n" : " 2\n")
    }
    let data = directory.appendingPathComponent("data")
    try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
    let attributesURL = data.appendingPathComponent("list_attr_celeba.txt")
    let partitionURL = data.appendingPathComponent("list_eval_partition.txt")
    try attributes.write(to: attributesURL, atomically: true, encoding: .utf8)
    try partition.write(to: partitionURL, atomically: true, encoding: .utf8)
    return (attributesURL, partitionURL, all)
  }

  /// A run directory with run.json and scores.csv: the synthetic scores plus `noise` times a
  /// fixed pseudo-random pattern, so each run's model differs.
  func writeRun(
    _ name: String, strategy: Strategy, parameters: Int, buffers: Int, seconds: Double, noise: Double,
    splits: LabeledScores, data: (attributes: URL, partition: URL)?, bnBalance: String? = nil, convergedHead: Bool = false
  ) throws -> URL {
    let run = directory.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    let record = RunRecord(
      directory: run, strategy: strategy, updatedParameters: parameters, updatedBuffers: buffers,
      trainingSeconds: seconds, attributesFile: data?.attributes, partitionFile: data?.partition, bnBalance: bnBalance,
      convergedHead: convergedHead)
    try record.json().write(to: run.appendingPathComponent("run.json"))
    let count = splits.attributeCount
    var csv = "image," + splits.attributeNames.joined(separator: ",") + "\n"
    for image in 0..<splits.imageCount {
      let row = (0..<count).map { attribute -> String in
        let index = image * count + attribute
        return "\(splits.scores[index] + noise * sin(Double(index) * 12.9898))"
      }
      csv += splits.images[image] + "," + row.joined(separator: ",") + "\n"
    }
    try csv.write(to: run.appendingPathComponent("scores.csv"), atomically: true, encoding: .utf8)
    return run
  }

  func testReportFromSixRuns() throws {
    let dataset = try writeDataset(train: 400, test: 300)
    let data = (dataset.attributes, dataset.partition)
    let specifications: [(Strategy, Int, Int, Double, Double)] = [
      (.supervised, 23_590_000, 53_120, 4400, 0.2),
      (.full, 23_590_000, 53_120, 1330, 0.4),
      (.frozen, 81_960, 0, 900, 1.5),
      (.bnStats, 81_960, 53_120, 1000, 1.2),
      (.bnStatsAffine, 135_080, 53_120, 1100, 1.0),
      (.bnStatsSkip, 2_911_656, 53_120, 1000, 0.8),
    ]
    let runs = try specifications.map { strategy, parameters, buffers, seconds, noise in
      try writeRun(
        strategy.rawValue, strategy: strategy, parameters: parameters, buffers: buffers, seconds: seconds, noise: noise,
        splits: dataset.splits, data: strategy == .frozen ? nil : data)
    }
    let evaluated = try ReportBuilder.evaluate(
      runs: runs, attributes: dataset.attributes, partition: dataset.partition,
      bootstrap: BootstrapOptions(resamples: 20, seed: 1))
    XCTAssertEqual(evaluated.map(\.label), Strategy.allCases.filter(\.isInPaper).map(\.rawValue), "ordered by strategy")
    XCTAssertEqual(evaluated[0].evaluation.testImages, 300)
    let out = directory.appendingPathComponent("out")
    let findings = Findings.markdown(
      main: evaluated, seedRuns: [], probe: nil, trivial: nil, bootstrap: BootstrapOptions(resamples: 20, seed: 1))
    let sections = [ReportSection(title: "Findings", file: "findings.md", contents: findings)]
    try OutputFiles.write(ReportBuilder.files(evaluated, sections: sections), into: out)
    let written = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
    XCTAssertEqual(
      written,
      [
        "figure1.svg", "findings.md", "heatmap.svg", "index.html", "table1-full.csv", "table1.csv", "table1.md",
        "timing.md",
      ])

    let svg = try parseXML(out.appendingPathComponent("figure1.svg"))
    XCTAssertEqual(svg.root, "svg")
    let svgText = try String(contentsOf: out.appendingPathComponent("figure1.svg"), encoding: .utf8)
    XCTAssertEqual(svgText.components(separatedBy: "quartiles").count - 1, 6, "one box per model")
    let used = evaluated[0].evaluation.model.summary.selection.used
    let usedText = used >= 1000 ? "\(used / 1000),\(String(format: "%03d", used % 1000))" : "\(used)"
    XCTAssertTrue(svgText.contains("over the \(usedText) (t, c) pairs used"), "\(used) pairs")
    XCTAssertGreaterThan(used, 100, "most pairs of 300 test images have 10 positives on both sides")
    XCTAssertTrue(svgText.contains(">23.6M<"), "parameter bar label")

    XCTAssertEqual(try parseXML(out.appendingPathComponent("heatmap.svg")).root, "svg")

    let html = try parseXML(out.appendingPathComponent("index.html"))
    XCTAssertEqual(html.root, "html")
    XCTAssertEqual(html.counts["svg"], 2, "Figure 1 and the heat map are inline")
    XCTAssertEqual(
      html.counts["table"], 2 + 1 + 2 + 1 + 1, "Table 1 as gap and worst tables, test mean F1, all attributes as gap and worst tables, timing, findings")
    XCTAssertEqual(html.counts["script"], nil)
    XCTAssertEqual(html.counts["pre"], nil, "findings.md is rendered, not shown as Markdown source")
    XCTAssertEqual(html.externalReferences, [], "nothing to fetch from the network")
    // One table with a gap and a worst column per model, as in table1.md, has 3 + 2 x 6 = 15
    // columns: wider than a laptop screen.
    XCTAssertLessThanOrEqual(
      html.widestRow, 3 + Table1.modelsPerTable, "no table wider than attribute, rho, pairs and 6 models")
    let page = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
    XCTAssertTrue(page.contains("<h2>Findings</h2>"), "findings.md's own title heads its section")
    XCTAssertTrue(page.contains("<h3>The paper&apos;s findings on this data</h3>"))
    XCTAssertTrue(page.contains("<th>attribute</th><th>rho</th><th>pairs</th><th>frozen</th><th>bn-stats</th>"))
    XCTAssertTrue(page.contains("F1 gap |F1(t|c) - F1(t|-c)| of bn-stats"), "the heat map shows bn-stats by default")
    XCTAssertTrue(page.contains("<figcaption>The F1 gap |F1(t|c) - F1(t|-c)| of bn-stats for every ordered pair"))
    // A seventh model starts a second table of each metric.
    let seven = IndexPage.table1HTML(evaluated.map(\.result) + [evaluated[0].result], paperOnly: true)
    XCTAssertEqual(seven.components(separatedBy: "<table>").count - 1, 4)

    let table = try String(contentsOf: out.appendingPathComponent("table1.md"), encoding: .utf8)
    let paperTable = table.components(separatedBy: "## All attributes")[0]
    for attribute in Table1.paperAttributes + ["all"] {
      XCTAssertTrue(paperTable.contains("| \(attribute) |"), attribute)
    }
    // A gap table and a worst-group table, each of at most six models.
    XCTAssertEqual(paperTable.components(separatedBy: "### F1 gap ↓").count - 1, 1, paperTable)
    XCTAssertEqual(paperTable.components(separatedBy: "### Worst-group F1 ↑").count - 1, 1, paperTable)
    XCTAssertTrue(paperTable.contains("| attribute | rho | pairs | frozen | bn-stats | bn-stats-affine | bn-stats-skip | full | supervised |"), paperTable)
    let csv = try String(contentsOf: out.appendingPathComponent("table1.csv"), encoding: .utf8)
    let csvLines = csv.split(separator: "\n")
    XCTAssertEqual(csvLines.count, 13, "header, 11 attributes and all")
    XCTAssertEqual(csvLines[0].split(separator: ",").count, 3 + 6 * 2 * 4, "gap and worst with the bias-corrected estimate, low and high per model")
    let full = try String(contentsOf: out.appendingPathComponent("table1-full.csv"), encoding: .utf8)
    XCTAssertEqual(full.split(separator: "\n").count, 42)

    let timing = try String(contentsOf: out.appendingPathComponent("timing.md"), encoding: .utf8)
    XCTAssertTrue(timing.contains("supervised / bn-stats: 4.40x"), timing)
    XCTAssertTrue(timing.contains("full / bn-stats-skip: 1.33x"), timing)
    XCTAssertTrue(timing.contains("| supervised | supervised | 1:13:20 | 4400.0 | 23,590,000 | 53,120 |"), timing)
  }

  /// Each model's converged head beside it: a column of its own in Table 1 and the mean F1 table,
  /// not in Figure 1, and the paper's findings again under the converged head.
  func testConvergedHeadsStandBesideTheirModels() throws {
    let dataset = try writeDataset(train: 300, test: 200)
    let data = (dataset.attributes, dataset.partition)
    let strategies: [(Strategy, Double)] = [(.frozen, 1.5), (.bnStats, 1.2), (.full, 0.4), (.supervised, 0.2)]
    let main = try strategies.map { strategy, noise in
      try writeRun(strategy.rawValue, strategy: strategy, parameters: 1, buffers: 1, seconds: 10, noise: noise, splits: dataset.splits, data: data)
    }
    let converged = try strategies.map { strategy, noise in
      try writeRun(
        "converged/" + strategy.rawValue, strategy: strategy, parameters: 1, buffers: 1, seconds: 3, noise: noise * 0.8, splits: dataset.splits,
        data: data, convergedHead: true)
    }
    var job = ReportJob(runs: main.map(\.path), out: directory.appendingPathComponent("out").path)
    job.convergedRuns = converged.map(\.path)
    job.findings = true
    job.bootstrap = BootstrapOptions(resamples: 20, seed: 1)
    let lines = try job.run()
    XCTAssertTrue(lines.contains { $0.hasPrefix("frozen, converged head: test mean F1") }, "\(lines)")
    let out = directory.appendingPathComponent("out")
    let table = try String(contentsOf: out.appendingPathComponent("table1.md"), encoding: .utf8)
    XCTAssertTrue(table.contains("| attribute | rho | pairs | frozen | frozen, converged head | bn-stats | bn-stats, converged head | full | full, converged head |"), table)
    let figure = try String(contentsOf: out.appendingPathComponent("figure1.svg"), encoding: .utf8)
    XCTAssertFalse(figure.contains("converged head"), "Figure 1 shows the models as the search trained them")
    let findings = try String(contentsOf: out.appendingPathComponent("findings.md"), encoding: .utf8)
    let parts = findings.components(separatedBy: "## Under the converged head")
    XCTAssertEqual(parts.count, 2, findings)
    XCTAssertTrue(parts[1].contains("(a) BN Stats improves worst-group F1 over Frozen"), parts[1])
    XCTAssertFalse(parts[1].contains("(e) Training time"), "a converged head's time is a table and a solve, not the strategy's: \(parts[1])")
  }

  /// A paired verdict in words: an inconclusive one says how small a difference the test could
  /// have resolved, every other gives its resolution, and an equivalence holds when its test
  /// passes even if the difference is also significant.
  func testPairedVerdictsSayWhatTheTestSizeResolves() {
    func interval(_ low: Double, _ high: Double) -> Interval { Interval(low: low, high: high, estimate: (low + high) / 2, mean: 0, resamples: 100) }
    let wide = Findings.paired(interval(-0.04, 0.05), interval(-0.03, 0.04), higherIsBetter: true, images: 2000)
    XCTAssertEqual(wide.verdict, .inconclusive)
    XCTAssertTrue(wide.text.hasSuffix("**inconclusive**: differences below 0.045 cannot be resolved with 2,000 test images"), wide.text)
    let small = Findings.paired(interval(0.002, 0.012), interval(0.003, 0.011), higherIsBetter: true, images: 19962)
    XCTAssertEqual(small.verdict, .better)
    XCTAssertTrue(small.within, "the 90% interval lies inside the ±0.02 margin")
    XCTAssertTrue(small.text.contains("(it resolves differences of 0.005 with 19,962 test images)"), small.text)
  }

  /// Every pairwise finding per backbone, with its interval, and across backbones: the mean, the
  /// range and how many agree in sign.
  func testFindingsAcrossBackbones() throws {
    let dataset = try writeDataset(train: 300, test: 200)
    let data = (dataset.attributes, dataset.partition)
    // bn-stats is less noisy than frozen on every backbone: (a) has the same sign on all three.
    let noise: [[Strategy: Double]] = [
      [.frozen: 1.6, .bnStats: 0.3, .full: 0.5, .supervised: 0.6],
      [.frozen: 1.4, .bnStats: 0.4, .full: 0.6, .supervised: 0.5],
      [.frozen: 1.5, .bnStats: 0.2, .full: 0.5, .supervised: 0.5],
    ]
    let backbones = try noise.enumerated().map { k, levels in
      try ReportBuilder.evaluate(
        runs: levels.map { strategy, level in
          try writeRun("b\(k)/\(strategy.rawValue)", strategy: strategy, parameters: 1, buffers: 1, seconds: 1, noise: level, splits: dataset.splits, data: data)
        }, attributes: nil, partition: nil, bootstrap: nil)
    }
    let text = Findings.acrossBackbones(backbones, bootstrap: BootstrapOptions(resamples: 50, seed: 2))
    let rows = text.split(separator: "\n").filter { $0.hasPrefix("| (") }
    XCTAssertEqual(rows.count, 4, text)
    let a = try XCTUnwrap(rows.first { $0.hasPrefix("| (a)") }.map(String.init))
    XCTAssertTrue(a.hasSuffix("| 3 of 3 |"), a)
    let cells = a.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
    XCTAssertTrue(cells[1].hasPrefix("+"), "bn-stats, the less noisy, has the higher all worst on backbone 1: \(a)")
    let f = try XCTUnwrap(rows.first { $0.hasPrefix("| (f)") }.map(String.init))
    XCTAssertTrue(f.contains("n/a"), "no bn-recal run: (f) cannot be stated: \(f)")
    XCTAssertEqual(Findings.acrossBackbones([backbones[0]], bootstrap: BootstrapOptions(resamples: 50, seed: 2)), "", "one backbone: nothing across")
    // The findings' table spreads over the backbones: three of them for every strategy.
    let table = Findings.markdown(
      main: backbones[0], seedRuns: [], probe: nil, trivial: nil, bootstrap: BootstrapOptions(resamples: 20, seed: 2),
      backbones: Array(backbones.dropFirst()))
    XCTAssertTrue(table.contains("| backbones | backbones: mean F1 | backbones: all gap | backbones: all worst |"), table)
    let frozen = try XCTUnwrap(table.split(separator: "\n").first { $0.hasPrefix("| frozen |") })
    XCTAssertEqual(frozen.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }[4], "3", String(frozen))
  }

  /// bn-recal and a balanced bn-recal beside frozen and bn-stats: their own rows and labels, and
  /// the findings that compare them.
  func testBnRecalRowsAndFindings() throws {
    let dataset = try writeDataset(train: 400, test: 300)
    let data = (dataset.attributes, dataset.partition)
    let runs = [
      try writeRun("c", strategy: .bnStats, parameters: 81_960, buffers: 53_120, seconds: 1000, noise: 1.2, splits: dataset.splits, data: data),
      try writeRun("b", strategy: .bnRecal, parameters: 81_960, buffers: 53_120, seconds: 100, noise: 1.1, splits: dataset.splits, data: data, bnBalance: "Male"),
      try writeRun("a", strategy: .bnRecal, parameters: 81_960, buffers: 53_120, seconds: 90, noise: 1.0, splits: dataset.splits, data: data),
      try writeRun("f", strategy: .frozen, parameters: 81_960, buffers: 0, seconds: 80, noise: 1.5, splits: dataset.splits, data: data),
    ]
    let evaluated = try ReportBuilder.evaluate(runs: runs, attributes: nil, partition: nil, bootstrap: BootstrapOptions(resamples: 20, seed: 1))
    XCTAssertEqual(evaluated.map(\.label), ["frozen", "bn-recal balanced on Male", "bn-recal", "bn-stats"], "strategy order, then the order given")
    let findings = Findings.markdown(main: evaluated, seedRuns: [], probe: nil, trivial: nil, bootstrap: BootstrapOptions(resamples: 20, seed: 1))
    XCTAssertTrue(findings.contains("| bn-recal balanced on Male |"), findings)
    // The sentence on how differences are made names the method used (it said basic under bounded).
    XCTAssertTrue(findings.contains("a difference is bias-corrected, with 95% and 90% intervals that allow for the bias the correction leaves"), findings)
    XCTAssertFalse(findings.contains("basic intervals"), findings)
    let basic = Findings.markdown(
      main: evaluated, seedRuns: [], probe: nil, trivial: nil, bootstrap: BootstrapOptions(resamples: 20, seed: 1, method: .basic))
    XCTAssertTrue(basic.contains("a difference is bias-corrected, with 95% and 90% basic intervals"), basic)
    XCTAssertTrue(findings.contains("| bn-recal |"), findings)
    XCTAssertTrue(findings.contains("(f) Does bn-recal match bn-stats"), findings)
    XCTAssertTrue(findings.contains("bn-recal 90 s, bn-stats 1000 s (0.09 of it)"), findings)
    XCTAssertTrue(findings.contains("(g) Does recalibration balanced on Male help the worst group? bn-recal balanced on Male minus bn-recal: for c = Male, worst difference"), findings)
    let table = Table1.markdown(evaluated.map(\.result))
    XCTAssertTrue(table.contains(" | bn-recal balanced on Male |"), table)
  }

  func testRunWithoutDataNeedsTheOptions() throws {
    let dataset = try writeDataset(train: 60, test: 40)
    let run = try writeRun(
      "alone", strategy: .full, parameters: 1, buffers: 1, seconds: 1, noise: 0, splits: dataset.splits, data: nil)
    XCTAssertThrowsError(try ReportBuilder.evaluate(runs: [run], attributes: nil, partition: nil, bootstrap: nil)) {
      XCTAssertTrue("\($0)".contains("pass --attributes and --partition"), "\($0)")
    }
  }

  func testTwoRunsOfOneStrategyAreLabelledByDirectory() throws {
    let dataset = try writeDataset(train: 60, test: 40)
    let data = (dataset.attributes, dataset.partition)
    let runs = try ["seed1", "seed2"].map {
      try writeRun(
        $0, strategy: .full, parameters: 1, buffers: 1, seconds: 1, noise: 0.1, splits: dataset.splits, data: data)
    }
    let evaluated = try ReportBuilder.evaluate(runs: runs, attributes: nil, partition: nil, bootstrap: nil)
    XCTAssertEqual(evaluated.map(\.label), ["full (seed1)", "full (seed2)"])
    let timing = TimingTable.markdown(evaluated.map { ($0.label, $0.record) })
    XCTAssertTrue(timing.contains("supervised / bn-stats: n/a (no supervised or bn-stats run"), timing)
  }

  func testRunJSONContract() throws {
    let run = directory.appendingPathComponent("run")
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    let file = run.appendingPathComponent("run.json")
    func error(_ json: String) -> String {
      do {
        try json.write(to: file, atomically: true, encoding: .utf8)
        _ = try RunRecord(directory: run)
        return "no error"
      } catch {
        XCTAssertEqual((error as? InputError)?.file, file.path)
        return "\(error)"
      }
    }
    let valid = #""updated_parameters": 5, "updated_buffers": 0, "training_seconds": 2.5"#
    XCTAssertTrue(
      error(#"{"strategy": "linear", \#(valid)}"#).contains("strategy \"linear\" is not one of frozen, bn-recal, bn-stats"))
    XCTAssertTrue(error(#"{\#(valid)}"#).contains("has no \"strategy\""))
    XCTAssertTrue(
      error(#"{"strategy": "full", "updated_parameters": -1, "updated_buffers": 0, "training_seconds": 1}"#)
        .contains("\"updated_parameters\" is -1; it cannot be negative."))
    XCTAssertTrue(
      error(#"{"strategy": "full", "updated_parameters": "many", "updated_buffers": 0, "training_seconds": 1}"#)
        .contains("\"updated_parameters\" should be a non-negative integer."))
    XCTAssertTrue(
      error(#"{"strategy": "full", "updated_parameters": 1, "updated_buffers": 0}"#).contains(
        "has no \"training_seconds\""))
    XCTAssertTrue(error(#"{"strategy": "full", \#(valid), "data": {"attributes": "a"}}"#).contains("data.partition"))
    XCTAssertTrue(error("[1, 2").contains("is not a JSON object"))

    try
      #"{"strategy": "bn-stats-skip", \#(valid), "data": {"attributes": "../d/a.txt", "partition": "/p.txt"}, "extra": 1}"#
      .write(to: file, atomically: true, encoding: .utf8)
    let record = try RunRecord(directory: run)
    XCTAssertEqual(record.strategy, .bnStatsSkip)
    XCTAssertEqual(record.updatedParameters, 5)
    XCTAssertEqual(record.trainingSeconds, 2.5)
    XCTAssertEqual(record.attributesFile?.path, directory.appendingPathComponent("d/a.txt").standardizedFileURL.path)
    XCTAssertEqual(record.partitionFile?.path, "/p.txt")
    XCTAssertEqual(record.scoresFiles.scores.lastPathComponent, "scores.csv")
  }

  func testFailedWriteLeavesNoOutput() throws {
    let out = directory.appendingPathComponent("out")
    let files: [(name: String, contents: Data)] = [
      ("table1.md", Data("x".utf8)), ("missing/figure1.svg", Data("y".utf8)),
    ]
    XCTAssertThrowsError(try OutputFiles.write(files, into: out))
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), [])
  }

  func testCompactTickLabels() {
    XCTAssertEqual(Figure1.compact(1), "1")
    XCTAssertEqual(Figure1.compact(53_120), "53.1k")
    XCTAssertEqual(Figure1.compact(1e6), "1M")
  }

  func testSpearman() {
    // Correlations of a few ranks in Double: a few ulps (~1e-16) off.
    XCTAssertEqual(Findings.spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1, accuracy: 1e-12)
    XCTAssertEqual(Findings.spearman([1, 2, 3, 4], [9, 3, 2, 1]), -1, accuracy: 1e-12)
    // Ties get average ranks: ranks (0.5, 0.5, 2) and (0, 1, 2).
    XCTAssertEqual(Findings.spearman([1, 1, 2], [1, 2, 3]), 0.8660254037844386, accuracy: 1e-12)
  }

  /// findings.md from runs whose quality is set by their noise: BN Stats much better than Frozen,
  /// BN Stats + Skip identical to Full, a random-backbone probe far worse; then Frozen and BN Stats
  /// swapped, so that finding (a) must say it does not hold.
  func testFindingsSayWhatHoldsAndWhatDoesNot() throws {
    let dataset = try writeDataset(train: 400, test: 300)
    let data = (dataset.attributes, dataset.partition)
    func findings(frozenNoise: Double, bnStatsNoise: Double) throws -> String {
      let noises: [(Strategy, Double)] = [
        (.frozen, frozenNoise), (.bnStats, bnStatsNoise), (.bnStatsAffine, 0.3), (.bnStatsSkip, 0.2), (.full, 0.2), (.supervised, 0.2),
      ]
      let main = try noises.map { s, noise in
        try writeRun("\(s.rawValue)-\(frozenNoise)", strategy: s, parameters: 1, buffers: 1, seconds: s == .supervised ? 40 : 10, noise: noise, splits: dataset.splits, data: data)
      }
      let seeds = try noises.map { s, noise in
        try writeRun("\(s.rawValue)-\(frozenNoise)-seed1", strategy: s, parameters: 1, buffers: 1, seconds: 11, noise: noise * 1.02, splits: dataset.splits, data: data)
      }
      let probe = try writeRun("probe-\(frozenNoise)", strategy: .frozen, parameters: 1, buffers: 0, seconds: 10, noise: 6, splits: dataset.splits, data: data)
      let options = BootstrapOptions(resamples: 100, seed: 1)
      let evaluated = try ReportBuilder.evaluate(runs: main, attributes: nil, partition: nil, bootstrap: options)
      let others = try ReportBuilder.evaluate(runs: seeds, attributes: nil, partition: nil, bootstrap: nil)
      let random = try ReportBuilder.evaluate(runs: [probe], attributes: nil, partition: nil, bootstrap: nil)[0]
      let trivial = try ReportBuilder.trivialBaseline(like: main[0], attributes: nil, partition: nil, bootstrap: nil)
      return Findings.markdown(main: evaluated, seedRuns: others, probe: random, trivial: trivial, bootstrap: options)
    }
    let good = try findings(frozenNoise: 1.5, bnStatsNoise: 0.2)
    XCTAssertTrue(good.contains("| frozen | "), good)
    XCTAssertTrue(good.contains("| 1 | "), "one fresh seed per strategy, the sweep's trial not counted: \(good)")
    XCTAssertTrue(good.contains("(a) BN Stats improves worst-group F1 over Frozen (paper: all worst .43 -> .69, +0.26, which the paper calls 36%: of Full FT's .72): **holds**"), good)
    // Every verdict says what the comparison resolves, on how many test images.
    XCTAssertTrue(good.contains("(it resolves differences of 0."), good)
    XCTAssertTrue(good.contains(" with 300 test images"), good)
    XCTAssertTrue(good.contains("| all gap ↓ (plain) | all worst ↑ (plain) |"), "the findings' table says its figures are the plain statistics: \(good)")
    XCTAssertTrue(good.contains("pretraining learned features a linear probe can use"), good)
    XCTAssertTrue(good.contains("Supervised / BN Stats"), good)
    XCTAssertTrue(good.contains("The trivial predictor (every image positive, thresholds from train) has a test mean F1 of"), good)
    // (d) is stated against the trivial predictor's trend, paired, with what it resolves.
    XCTAssertTrue(good.contains("- (d) The gap shrinks as rho grows, beyond what base rates and test noise give: **"), good)
    XCTAssertTrue(good.contains("minus the trivial predictor's, paired on the same resamples"), good)
    XCTAssertTrue(good.contains("frozen +") || good.contains("frozen -"), "each model's trend difference is given: \(good)")
    let swapped = try findings(frozenNoise: 0.2, bnStatsNoise: 1.5)
    XCTAssertTrue(swapped.contains("of Full FT's .72): **does not hold**"), swapped)
    XCTAssertTrue(swapped.contains("all worst difference -"), "BN Stats minus Frozen is negative when BN Stats is the noisier: \(swapped)")
  }

  func testMarkdownBlocks() {
    let markdown = """
      # Findings

      Some *emphasis*, **strong**, `a_b|c`,
      [table1.md](table1.md) &amp; <b>.

      | model | value | note |
      |:---|---:|:-:|
      | bn-stats | 0.512 ± 0.010 | a \\| b |
      | full | 0.3 |
      - (a) first: **holds**.
      - second
        - nested *one*
        - nested two
      continued
      1. one
      2. two
      ### Deep

      3. three
      """
    let expected = """
      <h2>Findings</h2>
      <p>Some <em>emphasis</em>, <strong>strong</strong>, <code>a_b|c</code>,
      <a href="table1.md">table1.md</a> &amp;amp; &lt;b&gt;.</p>
      <table>
      <thead><tr><th style="text-align: left">model</th><th style="text-align: right">value</th>\
      <th style="text-align: center">note</th></tr></thead>
      <tbody>
      <tr><td style="text-align: left">bn-stats</td><td style="text-align: right">0.512 ± 0.010</td>\
      <td style="text-align: center">a | b</td></tr>
      <tr><td style="text-align: left">full</td><td style="text-align: right">0.3</td>\
      <td style="text-align: center"></td></tr>
      </tbody>
      </table>
      <ul>
      <li>(a) first: <strong>holds</strong>.</li>
      <li>second
      <ul>
      <li>nested <em>one</em></li>
      <li>nested two</li>
      </ul></li>
      </ul>
      <p>continued</p>
      <ol>
      <li>one</li>
      <li>two</li>
      </ol>
      <h4>Deep</h4>
      <ol start="3">
      <li>three</li>
      </ol>

      """
    XCTAssertEqual(MarkdownHTML.html(markdown, headingOffset: 1), expected)
    let nineColumns = "| a | b | c | d | e | f | g | h | i |\n" + String(repeating: "|---", count: 9) + "|\n"
    XCTAssertTrue(MarkdownHTML.html(nineColumns).hasPrefix("<table class=\"wide\">\n"), "laid out to the page width")
  }

  func testMarkdownInlineText() {
    func inline(_ text: String) -> String { MarkdownHTML.inline(text) }
    XCTAssertEqual(inline(#"He said "x" & 'y' <script>"#), "He said &quot;x&quot; &amp; &apos;y&apos; &lt;script&gt;")
    XCTAssertEqual(inline("Wearing_Necktie and No_Beard"), "Wearing_Necktie and No_Beard", "no _ emphasis")
    XCTAssertEqual(inline("0.12 [0.1, 0.2] * and * marks"), "0.12 [0.1, 0.2] * and * marks", "a lone * is text")
    XCTAssertEqual(inline("**a *b* c**"), "<strong>a <em>b</em> c</strong>")
    XCTAssertEqual(inline("*a **b** c*"), "<em>a <strong>b</strong> c</em>")
    XCTAssertEqual(inline("`<*x*>`"), "<code>&lt;*x*&gt;</code>", "nothing inside code is markup")
    XCTAssertEqual(inline(#"\*not\* \[x\]"#), "*not* [x]")
    XCTAssertEqual(inline("[*see*](a.md?x=1&y=2)"), #"<a href="a.md?x=1&amp;y=2"><em>see</em></a>"#)
    XCTAssertEqual(inline("[x](javascript:alert(1))"), "[x](javascript:alert(1))", "no script links")
    XCTAssertEqual(inline("[site](https://example.org/a)"), #"<a href="https://example.org/a">site</a>"#)
  }

  /// Three attributes on eight images: no image with A has C (so (c = A, t = C) is undefined),
  /// and C is true on two images, one of them with B (low support for (c = C, t = B)).
  func testHeatMapMarksUndefinedAndLowSupportPairs() throws {
    let labels: [[Bool]] = [
      [true, true, false], [true, true, false], [true, false, false], [true, false, false],
      [false, true, true], [false, false, true], [false, true, false], [false, false, false],
    ]
    var predictions = labels
    predictions[2][0] = false
    let outcomes = Outcomes(
      attributeCount: 3, imageCount: 8, labels: labels.flatMap { $0 }, predictions: predictions.flatMap { $0 })
    let counts = PairCounts.count(outcomes)
    let summary = FairnessSummary(counts, selection: PairSelection(counts, minimum: 2))
    let names = ["A", "B", "C"]
    let cells = HeatMap.cells(summary: summary, names: names)
    let gap = try XCTUnwrap(summary.pairGap[1 * 3 + 0])
    // Ratios of counts in Double: a few ulps off.
    XCTAssertEqual(gap, 1 - 2.0 / 3, accuracy: 1e-12, "F1(A|B) = 1, F1(A|-B) = 2/3")
    func plainGap(_ index: Int) -> Double { abs(summary.f1GivenCondition[index]! - summary.f1GivenNotCondition[index]!) }
    XCTAssertEqual(
      cells,
      [
        .undefined(reason: "t = c"), .value(gap: summary.pairGap[1]!),
        .undefined(reason: "a subgroup of A has no positive of C"),
        .value(gap: gap), .undefined(reason: "t = c"), .lowSupport(gap: plainGap(5)),
        .undefined(reason: "a subgroup of C has no positive of A"),
        .lowSupport(gap: plainGap(7)), .undefined(reason: "t = c"),
      ])
    XCTAssertNil(summary.pairGap[5], "a low-support pair is not in Table 1")

    let figure = HeatMap.figure(label: "m", names: names, summary: summary, counts: counts)
    let parser = XMLParser(data: Data(figure.svg.utf8))
    let svg = SVGCells()
    parser.delegate = svg
    XCTAssertTrue(parser.parse(), "\(String(describing: parser.parserError))")
    let fills = Dictionary(svg.cells.map { ($0.title, $0.fill) }, uniquingKeysWith: { first, _ in first })
    XCTAssertEqual(
      fills["c = A, t = C: undefined (a subgroup of A has no positive of C)"],
      HeatMap.undefinedColor)
    XCTAssertEqual(fills["c = B, t = B: undefined (t = c)"], HeatMap.undefinedColor)
    XCTAssertEqual(
      fills["c = B, t = A: gap 0.333 (positives of t: 2 with c, 2 without)"], HeatMap.color(gap / 0.4),
      "scaled to 0.4, the largest well-supported gap rounded up")
    let lowSupport = try XCTUnwrap(svg.cells.first { $0.title.hasPrefix("c = C, t = B: gap") })
    XCTAssertTrue(lowSupport.title.hasSuffix("low support, not in Table 1 (positives of t: 1 with c, 3 without)"), lowSupport.title)
    XCTAssertNotEqual(lowSupport.fill, HeatMap.undefinedColor)
    XCTAssertEqual(svg.patternPaths.count, 1, "one hatched overlay")
    XCTAssertEqual(svg.patternPaths.first?.filter { $0 == "M" }.count, 2, "over the two low-support cells")
    XCTAssertTrue(figure.caption.contains("2 of the 6 pairs where c has no two subgroups"), figure.caption)
    XCTAssertTrue(figure.caption.contains("Hatched: 2 pairs with fewer than 2 positives"), figure.caption)
  }

  /// The trivial predictor predicts every test image positive (so its mean F1 is the mean of
  /// 2p / (1 + p) over the attributes' test positive rates p), appears beside the models, and a
  /// model whose scores are noise is flagged as within 0.05 of it while a good one is not.
  func testBaselinesAndTheNearTrivialFlag() throws {
    let dataset = try writeDataset(train: 400, test: 300)
    let data = (dataset.attributes, dataset.partition)
    let good = try writeRun("good", strategy: .full, parameters: 1, buffers: 0, seconds: 1, noise: 0, splits: dataset.splits, data: data)
    let noise = try writeRun("noise", strategy: .frozen, parameters: 1, buffers: 0, seconds: 1, noise: 1e4, splits: dataset.splits, data: data)
    let trivial = try ReportBuilder.trivialBaseline(like: good, attributes: nil, partition: nil, bootstrap: nil)
    let outcomes = trivial.evaluation.model.outcomes
    XCTAssertTrue(outcomes.predictions.allSatisfy { $0 }, "every attribute has train positives here: all predicted positive")
    let k = outcomes.attributeCount
    let expected = (0..<k).map { a -> Double in
      let p = Double((0..<outcomes.imageCount).filter { outcomes.labels[$0 * k + a] }.count) / Double(outcomes.imageCount)
      return 2 * p / (1 + p)
    }.reduce(0, +) / Double(k)
    // The same ratios of counts averaged in Double, two ways: a few ulps apart.
    XCTAssertEqual(trivial.evaluation.model.summary.meanF1, expected, accuracy: 1e-12)
    let evaluated = try ReportBuilder.evaluate(runs: [good, noise], attributes: nil, partition: nil, bootstrap: nil)
    let table = Table1.markdown(evaluated.map(\.result) + [trivial.result])
    XCTAssertTrue(table.contains(" | trivial |"), table)
    let flagged = table.split(separator: "\n").filter { $0.contains("⚠ within 0.05 of the trivial predictor") }
    XCTAssertEqual(flagged.count, 1, table)
    XCTAssertTrue(flagged[0].hasPrefix("| frozen |"), "the noise model is flagged: \(flagged)")
    let figure = Figure1.svg(evaluated.map(\.figureModel) + [trivial.figureModel])
    XCTAssertTrue(figure.contains(">trivial<"), "the trivial predictor is in Figure 1")
  }

  /// Time per epoch: the median step time after the first, times the steps of an epoch; bn-recal's
  /// adds its feature table's pass and its recalibration pass (made once); the JSON reads back,
  /// and a damaged file is refused by name.
  func testEpochTimesFromMeasuredSteps() throws {
    let run = directory.appendingPathComponent("timed")
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    let steps = [(1, 9.0), (2, 0.5), (3, 0.3), (4, 0.4), (5, 0.2)].map { #"{"step": \#($0.0), "loss": 1, "step_seconds": \#($0.1)}"# }
    try (steps.joined(separator: "\n") + "\n").write(to: run.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
    // Steps 2-5: 0.5, 0.3, 0.4, 0.2 -> median 0.35; the 9 s first step is warm-up. Sums and a
    // product of a few Doubles below 100: ~1e-14.
    XCTAssertEqual(try EpochTimes.perEpoch(run: run, strategy: .full, stepsPerEpoch: 100), 35, accuracy: 1e-9)
    let record = RunFile(
      strategy: .bnRecal, updatedParameters: 1, updatedBuffers: 0, trainingSeconds: 60, featureTable: .init(images: 300, seconds: 2.5),
      recalibration: .init(images: 200, seconds: 1.25))
    try record.encoded().write(to: run.appendingPathComponent("run.json"))
    XCTAssertEqual(try EpochTimes.perEpoch(run: run, strategy: .bnRecal, stepsPerEpoch: 100), 35 + 2.5 + 1.25, accuracy: 1e-9)
    XCTAssertEqual(try EpochTimes.perEpoch(run: run, strategy: .full, stepsPerEpoch: 100), 35, accuracy: 1e-9, "the passes are not full's")
    let file = directory.appendingPathComponent("epoch-times.json")
    try EpochTimes(seconds: [.full: 35, .bnStatsSkip: 25]).json.write(to: file)
    let read = try EpochTimes(contentsOf: file)
    XCTAssertEqual(read.seconds, [.full: 35, .bnStatsSkip: 25])
    let timing = TimingTable.markdown([], epochTimes: read)
    XCTAssertTrue(timing.contains("full / bn-stats-skip per epoch: 1.40x"), timing)
    try #"{"fast": 1}"#.write(to: file, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try EpochTimes(contentsOf: file)) { XCTAssertTrue("\($0)".contains("epoch-times.json"), "\($0)") }
  }

  /// comparison.md gives both models' mean F1 and their paired difference, and names the
  /// intervals it was given (it used to call every interval "basic").
  func testComparisonGivesMeanF1AndNamesItsIntervals() throws {
    let names = ["a0", "a1"]
    var state: UInt64 = 12345
    func uniform() -> Double {  // a fixed sequence: the test sees the same scores every run
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
    func scores(_ n: Int, labels: [Bool], noise: Double) -> [Double] {
      labels.map { ($0 ? 1.0 : 0.0) + noise * uniform() }
    }
    let n = 200
    let trainLabels = (0..<(2 * n)).map { $0 % 3 == 0 }
    let testLabels = (0..<(2 * n)).map { $0 % 5 < 2 }
    let images = (0..<n).map { "\($0)" }, testImages = (0..<n).map { "t\($0)" }
    func splits(noise: Double) -> EvaluationSplits {
      EvaluationSplits(
        train: LabeledScores(attributeNames: names, images: images, labels: trainLabels, scores: scores(n, labels: trainLabels, noise: noise)),
        test: LabeledScores(attributeNames: names, images: testImages, labels: testLabels, scores: scores(n, labels: testLabels, noise: noise)))
    }
    let good = splits(noise: 0.6), poor = splits(noise: 1.2)
    for method in IntervalMethod.allCases {
      let evaluation = try FairnessEvaluation(
        good, bootstrap: BootstrapOptions(resamples: 200, seed: 1, method: method), compared: (name: "poor.csv", splits: poor), minimumSupport: 1)
      let text = ComparisonTable.markdown(evaluation, label: "good")
      let first = evaluation.model.summary.meanF1, second = try XCTUnwrap(evaluation.comparison).model.summary.meanF1
      // The same labels with half the score noise: the better model by construction (0.89
      // against 0.65 here).
      XCTAssertGreaterThan(first, second)
      let interval = try XCTUnwrap(evaluation.comparison?.differenceIntervals?.meanF1)
      XCTAssertTrue(
        text.contains(
          "Mean F1 over the 2 attributes: good \(formatted(first)), compared \(formatted(second)); difference \(formatted(interval.estimate)) [\(formatted(interval.low)), \(formatted(interval.high))]"
        ), text)
      switch method {
      case .percentile: XCTAssertTrue(text.contains("95% percentile intervals around the plain difference"), text)
      case .basic: XCTAssertTrue(text.contains("bias-corrected, with 95% basic intervals"), text)
      case .bounded: XCTAssertTrue(text.contains("95% intervals that allow for the bias the correction leaves"), text)
      }
      XCTAssertTrue(text.contains("from the same 200 bootstrap resamples"), text)
      // table1.md names the same method (it used to say "basic" whatever the intervals were).
      let table = Table1.markdown([
        ModelResult(label: "good", attributeNames: names, summary: evaluation.model.summary, intervals: evaluation.intervals)
      ])
      let others = IntervalMethod.allCases.filter { $0 != method }
      let wording: [IntervalMethod: String] = [
        .percentile: "95% percentile bootstrap interval", .basic: "95% basic bootstrap interval",
        .bounded: "95% interval widened to allow for the bias",
      ]
      XCTAssertTrue(table.contains(wording[method]!), table)
      for other in others { XCTAssertFalse(table.contains(wording[other]!), "\(method): \(table)") }
    }
  }
}

// Table 1 (per-attribute F1 gap and worst-group F1 of each model) and the comparison table, as
// Markdown, CSV and HTML built from one layout.
import Fairness

/// One model's fairness results under a display label.
public struct ModelResult: Sendable {
  public let label: String
  public let attributeNames: [String]
  public let summary: FairnessSummary
  public let intervals: BootstrapIntervals?

  public init(label: String, attributeNames: [String], summary: FairnessSummary, intervals: BootstrapIntervals?) {
    self.label = label
    self.attributeNames = attributeNames
    self.summary = summary
    self.intervals = intervals
  }
}

/// A header and rows of text cells, rendered three ways.
struct TextTable {
  var header: [String]
  var rows: [[String]]

  var markdown: String {
    let lines = [header, header.map { _ in "---" }] + rows
    return lines.map { "| " + $0.joined(separator: " | ") + " |" }.joined(separator: "\n") + "\n"
  }

  var csv: String {
    ([header] + rows).map { $0.map(csvField).joined(separator: ",") }.joined(separator: "\n") + "\n"
  }

  /// An interval written after a value, "0.123 [0.101, 0.140]", goes on a line of its own in
  /// smaller type, so that wide tables of many models stay legible.
  var html: String {
    func cell(_ text: String) -> String {
      guard let bracket = text.range(of: " [") else { return escapedXML(text) }
      let value = escapedXML(String(text[..<bracket.lowerBound]))
      let interval = escapedXML("[" + String(text[bracket.upperBound...]))
      return "\(value)<br/><span class=\"interval\">\(interval)</span>"
    }
    let head = "<tr>" + header.map { "<th>\(escapedXML($0))</th>" }.joined() + "</tr>"
    let body = rows.map { "<tr>" + $0.map { "<td>\(cell($0))</td>" }.joined() + "</tr>" }.joined(separator: "\n")
    return "<table>\n<thead>\(head)</thead>\n<tbody>\n\(body)\n</tbody>\n</table>\n"
  }
}

public enum Table1 {
  /// The paper's rows: 11 attributes spread over rho, in the paper's order (rho from .02 to .47).
  public static let paperAttributes = [
    "Bald", "Double_Chin", "Chubby", "Wearing_Necktie", "Wearing_Necklace", "No_Beard", "Straight_Hair",
    "Big_Lips", "Wavy_Hair", "Male", "Wearing_Lipstick",
  ]

  /// How to read the bootstrap intervals under a table, for the method and level the first
  /// bootstrapped model's intervals were made with; nil when no model has intervals.
  static func intervalNote(_ models: [ModelResult]) -> String? {
    models.lazy.compactMap(\.intervals).first.map { intervalNote(method: $0.method, level: $0.level) }
  }

  static func intervalNote(method: IntervalMethod, level: Double) -> String {
    let percent = String(format: "%.0f%%", 100 * level)
    let corrected = "a value is the bootstrap's bias-corrected estimate (2 x the test split's value - the mean over resampled test sets)"
    let bias = "a gap is an absolute difference of noisy F1s and is biased upward, a worst (a minimum) downward"
    let reading: String
    switch method {
    case .basic:
      reading = "\(corrected) and brackets hold its \(percent) basic bootstrap interval: \(bias), and the correction takes the bias the resampling shows off"
    case .bounded:
      reading = "\(corrected) and brackets hold a \(percent) interval widened to allow for the bias the correction leaves (mean F1: the basic interval): \(bias), and the correction takes off only the part of the bias the resampling shows"
    case .percentile:
      reading = "a value is the test split's value, not corrected for bias, and brackets hold its \(percent) percentile bootstrap interval: \(bias), so a gap's interval tends to lie above the population value and a worst's below"
    }
    return "With intervals, \(reading); docs/statistics.md has the coverage measured by simulation. Compare two models with the paired difference (fairtune fairness --compare)."
  }

  /// How pairs are chosen, under every table.
  static func pairNote(_ selection: PairSelection) -> String {
    "pairs: the tasks t whose subgroups (c true and c false) both hold at least \(selection.minimum) positives (--min-support); \(selection.used) pairs are used, \(selection.undefined) are undefined (a subgroup without positives) and \(selection.belowMinimum) below the minimum."
  }

  /// The attribute indices of the paper's rows that the dataset has, or of every attribute.
  static func rows(_ names: [String], paperOnly: Bool) -> [Int] {
    paperOnly ? paperAttributes.compactMap { names.firstIndex(of: $0) } : Array(names.indices)
  }

  /// attribute, rho, then per model "gap" and "worst", each with its interval when bootstrapped;
  /// a last row "all" holds the medians.
  static func display(_ models: [ModelResult], paperOnly: Bool) -> TextTable {
    guard let first = models.first else { return TextTable(header: [], rows: []) }
    let header = ["attribute", "rho", "pairs"] + models.flatMap { ["\($0.label) gap ↓", "\($0.label) worst ↑"] }
    func cell(_ value: Double?, _ interval: Interval??) -> String {
      guard let interval = interval ?? nil else { return formatted(value) }
      return "\(formatted(interval.estimate)) [\(formatted(interval.low)), \(formatted(interval.high))]"
    }
    let used = first.summary.selection.usedPerCondition
    var rows = rows(first.attributeNames, paperOnly: paperOnly).map { attribute in
      [first.attributeNames[attribute], formatted(first.summary.rho[attribute], decimals: 2), "\(used[attribute])"]
        + models.flatMap { model in
          [
            cell(model.summary.gap[attribute], model.intervals?.gap[attribute]),
            cell(model.summary.worst[attribute], model.intervals?.worst[attribute]),
          ]
        }
    }
    rows.append(
      ["all", "", "\(first.summary.selection.used)"]
        + models.flatMap { model in
          [
            cell(model.summary.allGap, model.intervals?.allGap),
            cell(model.summary.allWorst, model.intervals?.allWorst),
          ]
        })
    return TextTable(header: header, rows: rows)
  }

  /// The same numbers with full precision and intervals in columns of their own, for analysis.
  static func numeric(_ models: [ModelResult], paperOnly: Bool) -> TextTable {
    guard let first = models.first else { return TextTable(header: [], rows: []) }
    let bootstrapped = models.contains { $0.intervals != nil }
    func columns(_ label: String, _ metric: String) -> [String] {
      bootstrapped
        ? ["\(label) \(metric)", "\(label) \(metric) bias-corrected", "\(label) \(metric) low", "\(label) \(metric) high"]
        : ["\(label) \(metric)"]
    }
    func cells(_ value: Double?, _ interval: Interval??) -> [String] {
      let text = value.map { "\($0)" } ?? ""
      guard bootstrapped else { return [text] }
      let interval = interval ?? nil
      return [text, interval.map { "\($0.estimate)" } ?? "", interval.map { "\($0.low)" } ?? "", interval.map { "\($0.high)" } ?? ""]
    }
    let used = first.summary.selection.usedPerCondition
    let header = ["attribute", "rho", "pairs"] + models.flatMap { columns($0.label, "gap") + columns($0.label, "worst") }
    var rows = rows(first.attributeNames, paperOnly: paperOnly).map { attribute in
      [first.attributeNames[attribute], "\(first.summary.rho[attribute])", "\(used[attribute])"]
        + models.flatMap { model in
          cells(model.summary.gap[attribute], model.intervals?.gap[attribute])
            + cells(model.summary.worst[attribute], model.intervals?.worst[attribute])
        }
    }
    rows.append(
      ["all", "", "\(first.summary.selection.used)"]
        + models.flatMap { model in
          cells(model.summary.allGap, model.intervals?.allGap)
            + cells(model.summary.allWorst, model.intervals?.allWorst)
        })
    return TextTable(header: header, rows: rows)
  }

  /// How close to the trivial predictor's test mean F1 a model is flagged as having learned little.
  public static let trivialMargin = 0.05

  /// Every model's and baseline's test mean F1 (with its interval when bootstrapped); a model
  /// within `trivialMargin` of the trivial predictor is flagged.
  static func meanF1(_ models: [ModelResult]) -> TextTable {
    let trivial = models.first { $0.label == Baseline.trivialLabel }?.summary.meanF1
    let rows = models.map { model -> [String] in
      let value = model.intervals?.meanF1.map { "\(formatted($0.estimate)) [\(formatted($0.low)), \(formatted($0.high))]" }
        ?? formatted(model.summary.meanF1)
      var note = ""
      if model.label == Baseline.trivialLabel { note = "every image positive, thresholds from train" }
      if model.label == Baseline.probeLabel { note = "the frozen strategy on a randomly initialised backbone" }
      if let trivial, model.label != Baseline.trivialLabel, model.summary.meanF1 - trivial < trivialMargin {
        note = String(format: "⚠ within %.2f of the trivial predictor (%.3f): it has learned little, whatever its fairness figures say", trivialMargin, trivial)
      }
      return [model.label, value, note]
    }
    return TextTable(header: ["model", "test mean F1", "note"], rows: rows)
  }

  /// table1.md: the paper's rows, then all attributes.
  public static func markdown(_ models: [ModelResult]) -> String {
    var text = "# Table 1: F1 gap (lower is fairer) and worst-group F1 (higher is better)\n\n"
    text += "For each attribute c: the mean over the tasks t of its used pairs (both subgroups with enough positives of t) of |F1(t|c) - F1(t|-c)| (gap) and of "
    text += "min(F1(t|c), F1(t|-c)) (worst); rho(c) = min(N(c), N(-c)) / N on the test split; all = median over c."
    if let first = models.first { text += " " + pairNote(first.summary.selection) }
    if let note = Table1.intervalNote(models) { text += " " + note }
    text += "\n\n" + markdownParts(models, paperOnly: true)
    text += "\n## Test mean F1\n\n" + meanF1(models).markdown
    text += "\n## All attributes\n\n" + markdownParts(models, paperOnly: false)
    return text
  }

  /// Models per table: a gap and a worst column per model in one table is wider than a laptop
  /// screen from five bootstrapped models on.
  static let modelsPerTable = 6

  /// Table 1 as a gap table and a worst-group table, each split into tables of at most
  /// `modelsPerTable` models (attribute, rho and pairs, then a column per model), with the
  /// cells of `display`: what table1.md and index.html show.
  static func parts(_ models: [ModelResult], paperOnly: Bool) -> [(heading: String, tables: [TextTable])] {
    let table = display(models, paperOnly: paperOnly)
    return [(0, "F1 gap ↓ (lower is fairer)"), (1, "Worst-group F1 ↑ (higher is better)")].map { offset, heading in
      let tables = stride(from: 0, to: models.count, by: modelsPerTable).map { first -> TextTable in
        let shown = first..<min(first + modelsPerTable, models.count)
        let columns = [0, 1, 2] + shown.map { 3 + 2 * $0 + offset }
        return TextTable(header: ["attribute", "rho", "pairs"] + shown.map { models[$0].label }, rows: table.rows.map { row in columns.map { row[$0] } })
      }
      return (heading, tables)
    }
  }

  static func markdownParts(_ models: [ModelResult], paperOnly: Bool) -> String {
    parts(models, paperOnly: paperOnly).map { part in
      "### \(part.heading)\n\n" + part.tables.map(\.markdown).joined(separator: "\n")
    }.joined(separator: "\n")
  }

  /// table1.csv (the paper's rows) and table1-full.csv (all attributes).
  public static func csv(_ models: [ModelResult], paperOnly: Bool) -> String {
    numeric(models, paperOnly: paperOnly).csv
  }
}

public enum ComparisonTable {
  /// comparison.md: both models' gap and worst per attribute and the paired difference (first
  /// minus second) with its interval; a star marks an interval that excludes 0.
  public static func markdown(_ evaluation: FairnessEvaluation, label: String) -> String {
    guard let comparison = evaluation.comparison else { return "" }
    let names = evaluation.attributeNames
    let first = evaluation.model.summary
    let second = comparison.model.summary
    let differences = comparison.differenceIntervals
    func difference(_ a: Double?, _ b: Double?, _ interval: Interval??) -> String {
      guard let a, let b else { return "n/a" }
      guard let interval = interval ?? nil else { return formatted(a - b) }
      let excludesZero = interval.low > 0 || interval.high < 0
      return "\(formatted(interval.estimate)) [\(formatted(interval.low)), \(formatted(interval.high))]\(excludesZero ? " *" : "")"
    }
    var rows = names.indices.map { attribute in
      [
        names[attribute], formatted(first.rho[attribute], decimals: 2),
        formatted(first.gap[attribute]), formatted(second.gap[attribute]),
        difference(first.gap[attribute], second.gap[attribute], differences?.gap[attribute]),
        formatted(first.worst[attribute]), formatted(second.worst[attribute]),
        difference(first.worst[attribute], second.worst[attribute], differences?.worst[attribute]),
      ]
    }
    rows.append([
      "all", "", formatted(first.allGap), formatted(second.allGap),
      difference(first.allGap, second.allGap, differences?.allGap),
      formatted(first.allWorst), formatted(second.allWorst),
      difference(first.allWorst, second.allWorst, differences?.allWorst),
    ])
    let table = TextTable(
      header: [
        "attribute", "rho", "\(label) gap", "compared gap", "difference", "\(label) worst", "compared worst",
        "difference",
      ], rows: rows)
    var text = "# \(label) compared with \(comparison.name)\n\n"
    text += "Differences are \(label) minus the compared model"
    if differences != nil, let options = evaluation.bootstrap {
      text += ", " + intervalWording(options.method, levels: String(format: "%.0f%%", 100 * options.level)) + ", from the same \(options.resamples) bootstrap resamples of the test images applied to both; * marks an interval that excludes 0"
    }
    text += ".\n\n"
    text += "Mean F1 over the \(names.count) attributes: \(label) \(formatted(first.meanF1)), compared \(formatted(second.meanF1)); difference "
    text += difference(first.meanF1, second.meanF1, differences?.meanF1) + ".\n\n"
    return text + table.markdown
  }

  /// What the intervals of a paired difference are, in words, for `method` at `levels` ("95%",
  /// or "95% and 90%" for a verdict's two); it follows "a difference is" or "differences are".
  static func intervalWording(_ method: IntervalMethod, levels: String) -> String {
    switch method {
    case .percentile: return "not bias-corrected, with \(levels) percentile intervals around the plain difference"
    case .basic: return "bias-corrected, with \(levels) basic intervals"
    case .bounded:
      return "bias-corrected, with \(levels) intervals that allow for the bias the correction leaves (mean F1: the basic interval)"
    }
  }

}

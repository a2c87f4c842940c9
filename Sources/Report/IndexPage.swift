// index.html: Figure 1, Table 1, the heat map, the timing table and the Markdown sections on one
// page that needs no network.
import Foundation

public enum IndexPage {
  /// A self-contained page (inline SVG and CSS, no scripts, no external fonts), written as
  /// well-formed XHTML so that it also parses as XML.
  static func html(
    title: String, figure: String, models: [ModelResult], timing: [(label: String, record: RunRecord)], files: [String],
    sections: [ReportSection] = [], heatMap: (svg: String, caption: String)? = nil, epochTimes: EpochTimes? = nil,
    preface: String? = nil
  ) -> String {
    // timing.md below its own title, which the page's heading replaces.
    let timingText = TimingTable.markdown(timing, epochTimes: epochTimes).split(separator: "\n", omittingEmptySubsequences: false)
      .drop { !$0.hasPrefix("# ") }.dropFirst().joined(separator: "\n")
    let heatMapFigure = heatMap.map {
      "<h2>Figure 2: F1 gap per attribute pair</h2>\n<figure>\n\($0.svg)<figcaption>\(escapedXML($0.caption))</figcaption>\n</figure>"
    }
    let links = files.map { "<li><a href=\"\(escapedXML($0))\">\(escapedXML($0))</a></li>" }.joined(separator: "\n")
    return """
      <!DOCTYPE html>
      <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
      <head>
      <meta charset="utf-8"/>
      <title>\(escapedXML(title))</title>
      <style>
      body { font-family: sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1100px; color: #222; }
      h3 { font-size: 17px; margin: 1.4em 0 0.4em; }
      table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
      th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
      th:first-child, td:first-child { text-align: left; }
      thead { background: #f0f0f0; }
      table.wide { table-layout: fixed; width: 100%; font-size: 12px; }
      table.wide th, table.wide td { padding: 3px 4px; }
      table.wide th { font-size: 11px; }
      table.wide td { overflow-wrap: anywhere; }
      table.wide th:first-child { width: 136px; }
      figure { margin: 1em 0; }
      figcaption { font-size: 13px; color: #444; max-width: 900px; }
      code { font-size: 12px; background: #f3f3f3; padding: 0 2px; }
      .interval { color: #666; font-size: 11px; white-space: nowrap; }
      </style>
      </head>
      <body>
      <h1>\(escapedXML(title))</h1>
      \(preface.map { "<p>\(MarkdownHTML.inline($0))</p>" } ?? "")
      <p>Fairness of fine-tuning strategies: for each attribute c, the F1 gap is the mean over the tasks t of its used pairs (both subgroups with enough positives of t) of
      |F1(t|c) - F1(t|-c)| (lower is fairer) and the worst-group F1 the mean of min(F1(t|c), F1(t|-c)) (higher is
      better); rho(c) = min(N(c), N(-c)) / N on the test split; all is the median over c.\(Table1.intervalNote(models).map { " " + escapedXML($0) } ?? "")</p>
      <h2>Figure 1</h2>
      <figure>
      \(figure)
      </figure>
      <h2>Table 1</h2>
      \(table1HTML(models, paperOnly: true))
      <h3>Test mean F1</h3>
      \(Table1.meanF1(models).html)
      \(heatMapFigure ?? "")
      <h2>Training time</h2>
      \(MarkdownHTML.html(timingText, headingOffset: 1))
      \(sections.map(\.html).joined(separator: "\n"))
      <h2>All attributes</h2>
      \(table1HTML(models, paperOnly: false))
      <h2>Files</h2>
      <ul>
      \(links)
      </ul>
      </body>
      </html>

      """
  }

  /// How many models one table of index.html shows: attribute, rho and six bootstrapped models
  /// fit a 1280 px screen.
  /// Table 1 as table1.md has it: a gap and a worst-group table, each in tables of at most
  /// `Table1.modelsPerTable` models.
  static func table1HTML(_ models: [ModelResult], paperOnly: Bool) -> String {
    Table1.parts(models, paperOnly: paperOnly).map { part in
      "<h3>\(escapedXML(part.heading))</h3>\n" + part.tables.map(\.html).joined(separator: "\n")
    }.joined(separator: "\n")
  }
}

/// A further part of the report: a Markdown text (rendered as HTML) or an SVG figure (inline).
public struct ReportSection: Sendable {
  public let title: String
  public let file: String
  public let contents: String

  public init(title: String, file: String, contents: String) {
    self.title = title
    self.file = file
    self.contents = contents
  }

  /// A Markdown text that starts with its own "# title" is headed by it (one level down, as
  /// <h2>); any other gets the section's title.
  var html: String {
    if file.hasSuffix(".svg") { return "<h2>\(escapedXML(title))</h2>\n<figure>\n\(contents)\n</figure>" }
    let markdown = MarkdownHTML.html(contents, headingOffset: 1)
    let headed = contents.drop { $0 == "\n" }.hasPrefix("# ")
    return headed ? markdown : "<h2>\(escapedXML(title))</h2>\n\(markdown)"
  }
}

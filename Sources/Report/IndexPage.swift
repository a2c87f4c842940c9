// index.html: Figure 1, Table 1 and the timing table on one page that needs no network.
import Foundation

public enum IndexPage {
  /// A self-contained page (inline SVG and CSS, no scripts, no external fonts), written as
  /// well-formed XHTML so that it also parses as XML.
  static func html(
    title: String, figure: String, models: [ModelResult], timing: [(label: String, record: RunRecord)], files: [String],
    sections: [ReportSection] = []
  ) -> String {
    let bootstrapped = models.contains { $0.intervals != nil }
    let ratioItems = TimingTable.markdown(timing)
      .split(separator: "\n")
      .filter { $0.hasPrefix("- ") }
      .map { "<li>\(escapedXML(String($0.dropFirst(2))))</li>" }
      .joined(separator: "\n")
    let timingTable = TextTable(
      header: ["model", "strategy", "training time", "updated parameters", "updated buffers"],
      rows: timing.map { run in
        [
          run.label, run.record.strategy.rawValue, TimingTable.duration(run.record.trainingSeconds),
          grouped(run.record.updatedParameters), grouped(run.record.updatedBuffers),
        ]
      })
    let links = files.map { "<li><a href=\"\(escapedXML($0))\">\(escapedXML($0))</a></li>" }.joined(separator: "\n")
    return """
      <!DOCTYPE html>
      <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
      <head>
      <meta charset="utf-8"/>
      <title>\(escapedXML(title))</title>
      <style>
      body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
      table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
      th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
      th:first-child, td:first-child { text-align: left; }
      thead { background: #f0f0f0; }
      figure { margin: 1em 0; }
      .interval { color: #666; font-size: 11px; white-space: nowrap; }
      </style>
      </head>
      <body>
      <h1>\(escapedXML(title))</h1>
      <p>Fairness of fine-tuning strategies: for each attribute c, the F1 gap is the mean over the other tasks t of
      |F1(t|c) - F1(t|-c)| (lower is fairer) and the worst-group F1 the mean of min(F1(t|c), F1(t|-c)) (higher is
      better); rho(c) = min(N(c), N(-c)) / N on the test split; all is the median over c.\(bootstrapped ? " " + escapedXML(Table1.intervalNote) : "")</p>
      <h2>Figure 1</h2>
      <figure>
      \(figure)
      </figure>
      <h2>Table 1</h2>
      \(Table1.display(models, paperOnly: true).html)
      <h2>Training time</h2>
      \(timingTable.html)
      <ul>
      \(ratioItems)
      </ul>
      \(sections.map(\.html).joined(separator: "\n"))
      <h2>All attributes</h2>
      \(Table1.display(models, paperOnly: false).html)
      <h2>Files</h2>
      <ul>
      \(links)
      </ul>
      </body>
      </html>

      """
  }
}

/// A further part of the report: a Markdown text (shown as it is) or an SVG figure (inline).
public struct ReportSection: Sendable {
  public let title: String
  public let file: String
  public let contents: String

  public init(title: String, file: String, contents: String) {
    self.title = title
    self.file = file
    self.contents = contents
  }

  var html: String {
    let body = file.hasSuffix(".svg") ? "<figure>\n\(contents)\n</figure>" : "<pre style=\"white-space: pre-wrap; font-size: 12px\">\(escapedXML(contents))</pre>"
    return "<h2>\(escapedXML(title))</h2>\n\(body)"
  }
}

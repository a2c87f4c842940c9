// `fairtune plan --svg`: predicted efficiency against node count, one panel per interconnect, a
// line per stage, and a ring where each stage's efficiency first falls below the threshold.

public enum ScalingFigure {
  /// One stage's efficiency at each node count of the figure.
  public struct Line: Sendable {
    public var stage: String
    public var efficiency: [Double]
    /// What the step waits on most at each node count (for the ring's label).
    public var bottleneck: [String]

    public init(stage: String, efficiency: [Double], bottleneck: [String]) {
      self.stage = stage
      self.efficiency = efficiency
      self.bottleneck = bottleneck
    }

    /// The first node count's index where efficiency is below `threshold`.
    public func firstBelow(_ threshold: Double) -> Int? { efficiency.firstIndex { $0 < threshold } }
  }

  public struct Panel: Sendable {
    public var title: String
    public var lines: [Line]

    public init(title: String, lines: [Line]) {
      self.title = title
      self.lines = lines
    }
  }

  static let colors = ["#1b6ac9", "#d95f02", "#1b9e77", "#7570b3", "#e7298a"]

  public static func svg(_ panels: [Panel], nodes: [Int], threshold: Double, title: String) -> String {
    let panelWidth = 330.0
    let width = panelWidth * Double(max(panels.count, 1)) + 40
    let height = 380.0
    let top = 76.0, bottom = 300.0
    func f(_ v: Double) -> String { String(format: "%.1f", v) }
    var body = ""
    for (p, panel) in panels.enumerated() {
      let left = 50 + Double(p) * panelWidth
      let right = left + panelWidth - 40
      func x(_ i: Int) -> Double { left + Double(i) / Double(max(nodes.count - 1, 1)) * (right - left) }
      func y(_ e: Double) -> Double { bottom - min(max(e, 0), 1) * (bottom - top) }
      body += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(top - 12))\" text-anchor=\"middle\" font-size=\"13\">\(escapedXML(panel.title))</text>\n"
      for i in 0...4 {
        let e = Double(i) / 4
        body += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(y(e)))\" y2=\"\(f(y(e)))\" stroke=\"#eee\"/>\n"
        if p == 0 { body += "<text x=\"\(f(left - 6))\" y=\"\(f(y(e) + 4))\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.2f", e))</text>\n" }
      }
      body += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(y(threshold)))\" y2=\"\(f(y(threshold)))\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n"
      body += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(bottom))\" y2=\"\(f(bottom))\" stroke=\"#333\"/>\n"
      body += "<line x1=\"\(f(left))\" x2=\"\(f(left))\" y1=\"\(f(top))\" y2=\"\(f(bottom))\" stroke=\"#333\"/>\n"
      for (i, n) in nodes.enumerated() where i % 2 == 0 || i == nodes.count - 1 {
        body += "<text x=\"\(f(x(i)))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\" font-size=\"11\">\(n)</text>\n"
      }
      body += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 34))\" text-anchor=\"middle\" font-size=\"12\">nodes</text>\n"
      for (l, line) in panel.lines.enumerated() {
        let color = colors[l % colors.count]
        let points = line.efficiency.enumerated().map { "\(f(x($0.offset))),\(f(y($0.element)))" }.joined(separator: " ")
        body += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"/>\n"
        if let i = line.firstBelow(threshold) {
          body += "<circle cx=\"\(f(x(i)))\" cy=\"\(f(y(line.efficiency[i])))\" r=\"5\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"><title>\(escapedXML(line.stage)): below \(threshold) from \(nodes[i]) nodes (waits on \(escapedXML(line.bottleneck[i])))</title></circle>\n"
          // Labels alternate above and below their rings, so that rings at one node count stay readable.
          let dy = l % 2 == 0 ? -8.0 : 16.0
          body += "<text x=\"\(f(x(i) + 7))\" y=\"\(f(y(line.efficiency[i]) + dy))\" font-size=\"10\" fill=\"\(color)\">\(nodes[i])</text>\n"
        }
      }
    }
    // The legend, once, under the panels.
    var legend = ""
    for (l, line) in (panels.first?.lines ?? []).enumerated() {
      let lx = 50 + Double(l) * 170
      legend += "<line x1=\"\(f(lx))\" x2=\"\(f(lx + 22))\" y1=\"\(f(height - 14))\" y2=\"\(f(height - 14))\" stroke=\"\(colors[l % colors.count])\" stroke-width=\"2\"/>"
      legend += "<text x=\"\(f(lx + 28))\" y=\"\(f(height - 10))\" font-size=\"12\">\(escapedXML(line.stage))</text>\n"
    }
    return """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif">
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(f(width / 2))" y="20" text-anchor="middle" font-size="14">\(escapedXML(title))</text>
      <text x="\(f(width / 2))" y="38" text-anchor="middle" font-size="11" fill="#555">efficiency (predicted); rings: the first node count below \(threshold), dashed</text>
      \(body)\(legend)
      </svg>

      """
  }
}

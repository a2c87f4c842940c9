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
    let top = 76.0, bottom = 300.0
    let legendTop = bottom + 70
    func f(_ v: Double) -> String { String(format: "%.1f", v) }
    var body = ""
    for (p, panel) in panels.enumerated() {
      let left = 50 + Double(p) * panelWidth
      let right = left + panelWidth - 40
      func x(_ i: Int) -> Double { left + Double(i) / Double(max(nodes.count - 1, 1)) * (right - left) }
      func y(_ e: Double) -> Double { bottom - min(max(e, 0), 1) * (bottom - top) }
      let heading = fittedText(panel.title, width: panelWidth - 12, size: 13, minimum: 10)
      body += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(top - 12))\" text-anchor=\"middle\" font-size=\"\(f(heading.size))\">\(heading.shortened ? "<title>\(escapedXML(panel.title))</title>" : "")\(escapedXML(heading.text))</text>\n"
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
      // Ring labels: where rings coincide (lines that cross the threshold at one point), one
      // label; otherwise each goes on the first side of its ring where it overlaps no other.
      var placed: [(x: Double, y: Double, width: Double)] = []
      var labelled: [(x: Double, y: Double, text: String)] = []
      for (l, line) in panel.lines.enumerated() {
        let color = colors[l % colors.count]
        let points = line.efficiency.enumerated().map { "\(f(x($0.offset))),\(f(y($0.element)))" }.joined(separator: " ")
        body += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"/>\n"
        guard let i = line.firstBelow(threshold) else { continue }
        let (cx, cy) = (x(i), y(line.efficiency[i]))
        body += "<circle cx=\"\(f(cx))\" cy=\"\(f(cy))\" r=\"5\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"><title>\(escapedXML(line.stage)): below \(threshold) from \(nodes[i]) nodes (waits on \(escapedXML(line.bottleneck[i])))</title></circle>\n"
        let label = "\(nodes[i])"
        let width = estimatedTextWidth(label, size: 10)
        // Right of the ring, or left of it where the figure ends.
        let ring = (x: cx + 7 + width + 2 > panelWidth * Double(panels.count) + 40 ? cx - 7 - width : cx + 7, y: cy)
        if labelled.contains(where: { $0.text == label && abs($0.x - cx) < 1 && abs($0.y - cy) < 1 }) { continue }
        labelled.append((cx, cy, label))
        let free = [-8.0, 16, -19, 27, -30, 38].map { ring.y + $0 }.first { candidate in
          !placed.contains { abs($0.y - candidate) < 11 && ring.x < $0.x + $0.width + 2 && $0.x < ring.x + width + 2 }
        } ?? ring.y - 8
        placed.append((ring.x, free, width))
        body += "<text x=\"\(f(ring.x))\" y=\"\(f(free))\" font-size=\"10\" fill=\"\(color)\">\(label)</text>\n"
      }
    }
    // The legend, once, under the panels: entries side by side, wrapping to another row.
    var legend = ""
    var (lx, row) = (50.0, 0)
    for (l, line) in (panels.first?.lines ?? []).enumerated() {
      let entry = 28 + estimatedTextWidth(line.stage, size: 12)
      if lx > 50 && lx + entry > width - 10 { (lx, row) = (50, row + 1) }
      let ly = legendTop + Double(row) * 18
      legend += "<line x1=\"\(f(lx))\" x2=\"\(f(lx + 22))\" y1=\"\(f(ly - 4))\" y2=\"\(f(ly - 4))\" stroke=\"\(colors[l % colors.count])\" stroke-width=\"2\"/>"
      legend += "<text x=\"\(f(lx + 28))\" y=\"\(f(ly))\" font-size=\"12\">\(escapedXML(line.stage))</text>\n"
      lx += entry + 20
    }
    let height = legendTop + Double(row) * 18 + 10
    let heading = fittedText(title, width: width - 20, size: 14, minimum: 10)
    return """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif">
      <title>\(escapedXML(title))</title>
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(f(width / 2))" y="20" text-anchor="middle" font-size="\(f(heading.size))">\(escapedXML(heading.text))</text>
      <text x="\(f(width / 2))" y="38" text-anchor="middle" font-size="11" fill="#555">efficiency (predicted); rings: the first node count below \(threshold), dashed</text>
      \(body)\(legend)
      </svg>

      """
  }
}

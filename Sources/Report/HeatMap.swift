// heatmap.svg: one model's F1 gap |F1(t|c) - F1(t|-c)| of every (task, condition) pair as a
// grid (rows c, columns t), with undefined and low-support pairs marked.
import Experiment
import Fairness
import Foundation

/// What one cell of the heat map shows.
enum PairCell: Equatable {
  /// No gap: t = c, c has no two subgroups on the test images, or a subgroup of c has no positive
  /// of t (its F1 is 0/0, or 0 whatever the model does). `reason` says which.
  case undefined(reason: String)
  /// A gap left out of Table 1: fewer than the minimum positives of t in one subgroup.
  case lowSupport(gap: Double)
  case value(gap: Double)
}

public enum HeatMap {
  static let undefinedColor = "#9e9e9e"
  static let hatchPattern = "heatmap-low-support"
  /// ColorBrewer's YlOrRd, from no gap (pale yellow) to the largest (dark red); neither end is
  /// grey, so undefined cells stay distinct.
  static let scale: [(red: Double, green: Double, blue: Double)] = [
    (255, 255, 204), (255, 237, 160), (254, 217, 118), (254, 178, 76), (253, 141, 60), (252, 78, 42), (227, 26, 28),
    (189, 0, 38), (128, 0, 38),
  ]
  static let cellSize = 14.0

  /// The run the report's heat map shows when none is chosen: bn-stats (the strategy the paper
  /// proposes), else the first other strategy that fine-tunes the SSL backbone, else the first run.
  public static func defaultModel(_ runs: [EvaluatedRun]) -> Int? {
    let preferred: [Strategy] = [.bnStats] + Strategy.allCases.filter { $0 != .bnStats && $0 != .supervised }
    for strategy in preferred {
      if let index = runs.firstIndex(where: { $0.record.strategy == strategy }) { return index }
    }
    return runs.isEmpty ? nil : 0
  }

  /// The cells in pair order, `[condition * attributeCount + task]`, as the summary's pair
  /// selection classes them.
  static func cells(summary: FairnessSummary, names: [String]) -> [PairCell] {
    let attributeCount = summary.attributeCount
    let selection = summary.selection
    var cells: [PairCell] = []
    for condition in 0..<attributeCount {
      for task in 0..<attributeCount {
        let index = condition * attributeCount + task
        let (c, t) = (names[condition], names[task])
        if task == condition {
          cells.append(.undefined(reason: "t = c"))
        } else if let given = summary.f1GivenCondition[index], let givenNot = summary.f1GivenNotCondition[index] {
          if selection.support[index] == 0 {
            cells.append(.undefined(reason: "a subgroup of \(c) has no positive of \(t)"))
          } else if let gap = summary.pairGap[index] {
            cells.append(.value(gap: gap))
          } else {
            cells.append(.lowSupport(gap: abs(given - givenNot)))
          }
        } else {
          cells.append(.undefined(reason: "\(c) is true on every test image or on none"))
        }
      }
    }
    return cells
  }

  /// The top of the colour scale: the largest well-supported gap rounded up to a tenth (at
  /// least 0.1), or the largest gap when no pair is well supported. Low-support gaps above it
  /// are drawn in the top colour, which the legend labels "≥".
  static func scaleTop(_ cells: [PairCell]) -> Double {
    var supported: [Double] = []
    var all: [Double] = []
    for cell in cells {
      switch cell {
      case .value(let gap):
        supported.append(gap)
        all.append(gap)
      case .lowSupport(let gap): all.append(gap)
      case .undefined: break
      }
    }
    let largest = supported.max() ?? all.max() ?? 0
    return max(0.1, (largest * 10 - 1e-9).rounded(.up) / 10)
  }

  /// The scale's colour of `fraction` (0 to 1) as #rrggbb, interpolated between its stops.
  static func color(_ fraction: Double) -> String {
    let position = min(max(fraction, 0), 1) * Double(scale.count - 1)
    let lower = min(Int(position), scale.count - 2)
    let weight = position - Double(lower)
    let (a, b) = (scale[lower], scale[lower + 1])
    func channel(_ x: Double, _ y: Double) -> Int { Int((x + (y - x) * weight).rounded()) }
    return String(
      format: "#%02x%02x%02x", channel(a.red, b.red), channel(a.green, b.green), channel(a.blue, b.blue))
  }

  /// The counts of undefined and low-support pairs off the diagonal, for the caption.
  static func tally(_ cells: [PairCell], attributeCount: Int) -> (undefined: Int, lowSupport: Int) {
    var undefined = 0
    var lowSupport = 0
    for (index, cell) in cells.enumerated() where index / attributeCount != index % attributeCount {
      switch cell {
      case .undefined: undefined += 1
      case .lowSupport: lowSupport += 1
      case .value: break
      }
    }
    return (undefined, lowSupport)
  }

  /// heatmap.svg, and the caption that index.html shows under it. `counts` must come from the
  /// outcomes the summary was made of (PairCounts.count of the evaluation's outcomes).
  public static func figure(label: String, names: [String], summary: FairnessSummary, counts: PairCounts) -> (svg: String, caption: String) {
    let cells = cells(summary: summary, names: names)
    let tally = tally(cells, attributeCount: summary.attributeCount)
    let pairs = summary.attributeCount * (summary.attributeCount - 1)
    let minimum = summary.selection.minimum
    let caption =
      "The F1 gap |F1(t|c) - F1(t|-c)| of \(label) for every ordered pair: rows are the condition c, columns the task t; Table 1's gap of c is the mean of its row over the pairs that are neither grey nor hatched. Grey: undefined, t = c on the diagonal and \(grouped(tally.undefined)) of the \(grouped(pairs)) pairs where c has no two subgroups or one of them has no positive of t. Hatched: \(grouped(tally.lowSupport)) pairs with fewer than \(minimum) positives of t in a subgroup (--min-support), left out of Table 1 because their F1s rest on few images. Hover over a cell for its values."
    return (svg(label: label, names: names, cells: cells, counts: counts, minimumPositives: minimum), caption)
  }

  /// The grid with attribute names on both axes, the colour legend and the legend of the marks.
  /// Each cell has a tooltip with the pair, its gap and the positives of t in both subgroups.
  static func svg(label: String, names: [String], cells: [PairCell], counts: PairCounts, minimumPositives: Int)
    -> String
  {
    let attributeCount = names.count
    let top = scaleTop(cells)
    // Sans-serif at 10 px is at most about 6 px per character for these names.
    let labelSpace = Double(names.map(\.count).max() ?? 0) * 6 + 8
    let left = 24 + labelSpace
    let gridTop = 44 + labelSpace
    let grid = Double(attributeCount) * cellSize
    let legendLeft = left + grid + 28
    let width = legendLeft + 250
    let height = max(gridTop + grid + 16, gridTop + 330)
    func f(_ value: Double) -> String { String(format: "%.1f", value) }
    func text(_ x: Double, _ y: Double, _ content: String, anchor: String = "start", extra: String = "") -> String {
      "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\"\(extra)>\(escapedXML(content))</text>"
    }
    var parts = [
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"10\">",
      "<title>\(escapedXML("F1 gap |F1(t|c) - F1(t|-c)| of \(label) per attribute pair: rows c, columns t"))</title>",
      "<defs><pattern id=\"\(hatchPattern)\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"1.6\" height=\"4\" fill=\"#000\" fill-opacity=\"0.55\"/></pattern></defs>",
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
      text(
        left, 18, "F1 gap |F1(t|c) - F1(t|-c)| of \(label)",
        extra: " font-size=\"14\" font-weight=\"bold\""),
      text(left + grid / 2, 36, "task t (columns)", anchor: "middle", extra: " font-size=\"12\""),
      "<text transform=\"translate(14 \(f(gridTop + grid / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">condition c (rows)</text>",
    ]
    for (index, name) in names.enumerated() {
      let middle = Double(index) * cellSize + cellSize / 2 + 3.5
      parts.append(text(left - 4, gridTop + middle, name, anchor: "end"))
      parts.append(
        "<text transform=\"translate(\(f(left + middle)) \(f(gridTop - 4))) rotate(-90)\">\(escapedXML(name))</text>")
    }
    var hatched: [String] = []
    for (index, cell) in cells.enumerated() {
      let (condition, task) = (index / attributeCount, index % attributeCount)
      let x = left + Double(task) * cellSize
      let y = gridTop + Double(condition) * cellSize
      let inside = counts.positives[index]
      let outside = counts.positives[attributeCount * attributeCount + task] - inside
      let pair = "c = \(names[condition]), t = \(names[task])"
      let support = "positives of t: \(inside) with c, \(outside) without"
      let (fill, description): (String, String)
      switch cell {
      case .undefined(let reason):
        (fill, description) = (undefinedColor, "\(pair): undefined (\(reason))")
      case .lowSupport(let gap):
        (fill, description) = (color(gap / top), "\(pair): gap \(formatted(gap)), low support, not in Table 1 (\(support))")
        hatched.append("M\(f(x)) \(f(y))h\(f(cellSize))v\(f(cellSize))h\(f(-cellSize))z")
      case .value(let gap):
        (fill, description) = (color(gap / top), "\(pair): gap \(formatted(gap)) (\(support))")
      }
      parts.append(
        "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(cellSize))\" height=\"\(f(cellSize))\" fill=\"\(fill)\"><title>\(escapedXML(description))</title></rect>"
      )
    }
    if !hatched.isEmpty {
      parts.append("<path d=\"\(hatched.joined())\" fill=\"url(#\(hatchPattern))\" pointer-events=\"none\"/>")
    }
    parts.append(
      "<rect x=\"\(f(left))\" y=\"\(f(gridTop))\" width=\"\(f(grid))\" height=\"\(f(grid))\" fill=\"none\" stroke=\"#333\"/>"
    )
    parts += legend(
      left: legendLeft, top: gridTop, scaleTop: top, clipped: clipped(cells, top), minimumPositives: minimumPositives)
    parts.append("</svg>")
    return parts.joined(separator: "\n") + "\n"
  }

  /// Whether a gap lies above the top of the scale (and is drawn in the top colour).
  static func clipped(_ cells: [PairCell], _ top: Double) -> Bool {
    cells.contains { cell in
      if case .lowSupport(let gap) = cell { return gap > top }
      return false
    }
  }

  /// A vertical colour bar from 0 (bottom) to `scaleTop` with a tick every tenth, then a swatch
  /// and text for the undefined and the low-support cells.
  static func legend(left: Double, top: Double, scaleTop: Double, clipped: Bool, minimumPositives: Int) -> [String] {
    func f(_ value: Double) -> String { String(format: "%.1f", value) }
    let barHeight = 180.0
    let barTop = top + 18
    let steps = 30
    var parts = ["<text x=\"\(f(left))\" y=\"\(f(top + 6))\" font-size=\"12\">F1 gap</text>"]
    for step in 0..<steps {
      let low = Double(step) / Double(steps)
      let y = barTop + barHeight * (1 - Double(step + 1) / Double(steps))
      parts.append(
        "<rect x=\"\(f(left))\" y=\"\(f(y))\" width=\"16\" height=\"\(f(barHeight / Double(steps) + 0.4))\" fill=\"\(color(low + 0.5 / Double(steps)))\"/>"
      )
    }
    parts.append(
      "<rect x=\"\(f(left))\" y=\"\(f(barTop))\" width=\"16\" height=\"\(f(barHeight))\" fill=\"none\" stroke=\"#333\"/>"
    )
    let tickCount = Int((scaleTop * 10).rounded())
    for tick in 0...tickCount {
      let value = Double(tick) / 10
      let y = barTop + barHeight * (1 - value / scaleTop)
      let text = (tick == tickCount && clipped ? "≥ " : "") + String(format: "%.1f", value)
      parts.append(
        "<line x1=\"\(f(left + 16))\" y1=\"\(f(y))\" x2=\"\(f(left + 20))\" y2=\"\(f(y))\" stroke=\"#333\"/>")
      parts.append("<text x=\"\(f(left + 23))\" y=\"\(f(y + 3.5))\">\(escapedXML(text))</text>")
    }
    var y = barTop + barHeight + 30
    let swatches = [
      (
        ["fill=\"\(undefinedColor)\""],
        ["undefined: t = c, c has no two", "subgroups, or a subgroup has", "no positive of t"]
      ),
      (
        ["fill=\"\(color(0.35))\"", "fill=\"url(#\(hatchPattern))\""],
        [
          "low support: fewer than \(minimumPositives)", "positives of t in a subgroup",
          "(the colour still shows the gap)",
        ]
      ),
    ]
    for (fills, lines) in swatches {
      for fill in fills {
        parts.append("<rect x=\"\(f(left))\" y=\"\(f(y - 10))\" width=\"14\" height=\"14\" \(fill) stroke=\"#333\"/>")
      }
      for (offset, line) in lines.enumerated() {
        parts.append("<text x=\"\(f(left + 20))\" y=\"\(f(y + Double(offset) * 12))\">\(escapedXML(line))</text>")
      }
      y += Double(lines.count) * 12 + 14
    }
    return parts
  }
}

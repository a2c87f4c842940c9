// Figure 1 as a self-contained SVG: parameters and buffers updated per model (log scale) above,
// the distribution of F1worst over the (task, condition) pairs used per model below.
import Fairness
import Foundation

/// What Figure 1 shows of one model.
public struct FigureModel: Sendable {
  public let label: String
  public let updatedParameters: Int
  public let updatedBuffers: Int
  /// min(F1(t|c), F1(t|-c)) for every pair that has both subgroups.
  public let pairWorst: [Double]

  public init(label: String, updatedParameters: Int, updatedBuffers: Int, pairWorst: [Double]) {
    self.label = label
    self.updatedParameters = updatedParameters
    self.updatedBuffers = updatedBuffers
    self.pairWorst = pairWorst
  }
}

/// The five numbers of a box plot (Tukey's: whiskers at the most extreme values within 1.5
/// interquartile ranges of the box) and the values beyond the whiskers.
struct BoxSummary {
  let lowerQuartile: Double
  let median: Double
  let upperQuartile: Double
  let lowerWhisker: Double
  let upperWhisker: Double
  let outliers: [Double]

  init?(_ values: [Double]) {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    func quantile(_ probability: Double) -> Double { interpolatedQuantile(sorted: sorted, probability) }
    let lower = quantile(0.25)
    let upper = quantile(0.75)
    let reach = 1.5 * (upper - lower)
    let inside = sorted.filter { $0 >= lower - reach && $0 <= upper + reach }
    lowerQuartile = lower
    median = quantile(0.5)
    upperQuartile = upper
    lowerWhisker = inside.first ?? lower
    upperWhisker = inside.last ?? upper
    outliers = sorted.filter { $0 < lower - reach || $0 > upper + reach }
  }
}

public enum Figure1 {
  static let width = 760.0
  static let left = 90.0
  static let right = 20.0
  static let parameterColor = "#4c72b0"
  static let bufferColor = "#dd8452"
  static let boxColor = "#9ebcda"

  public static func svg(_ models: [FigureModel]) -> String {
    let labels = ModelLabels(models.map(\.label), count: models.count, center: { center($0, of: models.count) })
    let pairCount = models.map(\.pairWorst.count).max() ?? 0
    let firstBottom = 290.0
    let secondTop = firstBottom + labels.band + 44
    let height = secondTop + 40 + 240 + labels.band + 12
    var parts: [String] = [
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
      "<title>Figure 1: parameters and buffers updated per model, and the distribution of F1worst over the \(grouped(pairCount)) attribute pairs used</title>",
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
    ]
    parts += updatedCountsPanel(models, labels: labels, top: 20, plotTop: 80, plotBottom: firstBottom)
    parts += worstDistributionPanel(models, labels: labels, pairCount: pairCount, top: secondTop, plotTop: secondTop + 40, plotBottom: secondTop + 280)
    parts.append("</svg>")
    return parts.joined(separator: "\n") + "\n"
  }

  /// The models' names under the columns of both panels: level when the widest fits its column,
  /// otherwise slanted (reading up to the right, ending under the column's centre), each cut short
  /// with "…" where it would leave the figure on the left, with the full name as its tooltip.
  struct ModelLabels {
    static let size = 12.0
    let texts: [String]
    let full: [String]
    /// Degrees of slant; 0 when level.
    let angle: Double
    /// The height the labels take under the axis.
    let band: Double

    init(_ names: [String], count: Int, center: (Int) -> Double) {
      let column = (Figure1.width - Figure1.left - Figure1.right) / Double(max(count, 1))
      let widest = names.map { estimatedTextWidth($0, size: Self.size) }.max() ?? 0
      full = names
      if widest <= column - 6 {
        texts = names
        angle = 0
        band = 20
        return
      }
      // Neighbouring slanted labels are column x sin(angle) apart across their baselines: at
      // least a line (1.3 em) apart, and never flatter than 40 degrees.
      let degrees = min(90, max(40, asin(min(1, 1.3 * Self.size / column)) * 180 / .pi))
      let radians = degrees * .pi / 180
      // A label ends at its column's centre and runs down to the left: its left end, less its
      // ascent turned by the slant, must stay inside the figure.
      texts = names.enumerated().map { index, name in
        let room = (center(index) - 4 - Self.size * sin(radians)) / cos(radians)
        return shortened(name, width: min(room, 40 * 0.65 * Self.size), size: Self.size)
      }
      angle = degrees
      band = 14 + (texts.map { estimatedTextWidth($0, size: Self.size) }.max() ?? 0) * sin(radians) + Self.size * cos(radians)
    }

    func svg(_ index: Int, x: Double, axis: Double) -> String {
      let tooltip = texts[index] == full[index] ? "" : "<title>\(escapedXML(full[index]))</title>"
      if angle == 0 {
        return "<text x=\"\(f(x))\" y=\"\(f(axis + 16))\" text-anchor=\"middle\">\(tooltip)\(escapedXML(texts[index]))</text>"
      }
      let y = axis + 8 + Self.size * 0.8
      return
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"end\" transform=\"rotate(-\(f(angle)) \(f(x)) \(f(y - Self.size * 0.4)))\">\(tooltip)\(escapedXML(texts[index]))</text>"
    }
  }

  /// The horizontal centre of model `index` of `count`.
  private static func center(_ index: Int, of count: Int) -> Double {
    left + (width - left - right) * (Double(index) + 0.5) / Double(max(count, 1))
  }

  private static func text(
    _ x: Double, _ y: Double, _ content: String, anchor: String = "middle", size: Int? = nil, weight: String? = nil
  )
    -> String
  {
    let sizeAttribute = size.map { " font-size=\"\($0)\"" } ?? ""
    let weightAttribute = weight.map { " font-weight=\"\($0)\"" } ?? ""
    return
      "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\"\(sizeAttribute)\(weightAttribute)>\(escapedXML(content))</text>"
  }

  static func f(_ value: Double) -> String { String(format: "%.1f", value) }

  /// 1, 10, 100, 1k, ... 100M: tick labels that stay short on a log axis.
  static func compact(_ value: Double) -> String {
    let units: [(Double, String)] = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
    for (scale, suffix) in units where value >= scale {
      let scaled = value / scale
      return (scaled == scaled.rounded() ? String(Int(scaled)) : String(format: "%.1f", scaled)) + suffix
    }
    return value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
  }

  private static func updatedCountsPanel(_ models: [FigureModel], labels: ModelLabels, top: Double, plotTop: Double, plotBottom: Double)
    -> [String]
  {
    var parts = [
      text(
        left, top + 12, "Parameters and buffers updated per model (log scale)", anchor: "start", size: 14,
        weight: "bold")
    ]
    let values = models.flatMap { [$0.updatedParameters, $0.updatedBuffers] }.filter { $0 > 0 }.map(Double.init)
    var lowDecade = floor(log10(values.min() ?? 1))
    var highDecade = ceil(log10(values.max() ?? 10))
    if highDecade <= lowDecade { highDecade = lowDecade + 1 }
    lowDecade = max(0, lowDecade)
    func y(_ value: Double) -> Double {
      plotBottom - (log10(value) - lowDecade) / (highDecade - lowDecade) * (plotBottom - plotTop)
    }
    for decade in Int(lowDecade)...Int(highDecade) {
      let tick = y(pow(10, Double(decade)))
      parts.append(
        "<line x1=\"\(f(left))\" y1=\"\(f(tick))\" x2=\"\(f(width - right))\" y2=\"\(f(tick))\" stroke=\"#e0e0e0\"/>")
      parts.append(text(left - 6, tick + 4, compact(pow(10, Double(decade))), anchor: "end"))
    }
    parts.append(axes(plotTop: plotTop, plotBottom: plotBottom))
    parts.append(verticalLabel("values updated", plotTop: plotTop, plotBottom: plotBottom))
    let groupWidth = (width - left - right) / Double(max(models.count, 1))
    let barWidth = min(36, groupWidth * 0.32)
    for (index, model) in models.enumerated() {
      let middle = center(index, of: models.count)
      // Each bar's value above it; where the two of a column would overlap, the higher one
      // moves up by a line.
      var valueLabels: [(x: Double, y: Double, text: String)] = []
      for (offset, value, color) in [
        (-1.0, model.updatedParameters, parameterColor), (0.0, model.updatedBuffers, bufferColor),
      ] {
        let x = middle + offset * barWidth + (offset < 0 ? -2 : 2)
        if value > 0 {
          let barTop = y(Double(value))
          parts.append(
            "<rect x=\"\(f(x))\" y=\"\(f(barTop))\" width=\"\(f(barWidth))\" height=\"\(f(plotBottom - barTop))\" fill=\"\(color)\"><title>\(escapedXML(model.label)): \(grouped(value))</title></rect>"
          )
          valueLabels.append((x + barWidth / 2, barTop - 4, compact(Double(value))))
        } else {
          valueLabels.append((x + barWidth / 2, plotBottom - 4, "0"))
        }
      }
      let (a, b) = (valueLabels[0], valueLabels[1])
      let clash = abs(a.x - b.x) < (estimatedTextWidth(a.text, size: 10) + estimatedTextWidth(b.text, size: 10)) / 2 + 2
      if clash && abs(a.y - b.y) < 11 {
        if a.y <= b.y { valueLabels[0].y = b.y - 11 } else { valueLabels[1].y = a.y - 11 }
      }
      for label in valueLabels { parts.append(text(label.x, label.y, label.text, size: 10)) }
      parts.append(labels.svg(index, x: middle, axis: plotBottom))
    }
    let legendY = top + 30
    parts.append(
      "<rect x=\"\(f(width - right - 230))\" y=\"\(f(legendY - 10))\" width=\"12\" height=\"12\" fill=\"\(parameterColor)\"/>"
    )
    parts.append(text(width - right - 213, legendY, "parameters", anchor: "start"))
    parts.append(
      "<rect x=\"\(f(width - right - 125))\" y=\"\(f(legendY - 10))\" width=\"12\" height=\"12\" fill=\"\(bufferColor)\"/>"
    )
    parts.append(text(width - right - 108, legendY, "buffers", anchor: "start"))
    return parts
  }

  private static func worstDistributionPanel(
    _ models: [FigureModel], labels: ModelLabels, pairCount: Int, top: Double, plotTop: Double, plotBottom: Double
  ) -> [String] {
    var parts = [
      text(
        left, top + 12, "F1worst = min(F1(t|c), F1(t|-c)) over the \(grouped(pairCount)) (t, c) pairs used", anchor: "start",
        size: 14, weight: "bold")
    ]
    func y(_ value: Double) -> Double { plotBottom - value * (plotBottom - plotTop) }
    for tick in stride(from: 0.0, through: 1.0, by: 0.2) {
      parts.append(
        "<line x1=\"\(f(left))\" y1=\"\(f(y(tick)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(tick)))\" stroke=\"#e0e0e0\"/>"
      )
      parts.append(text(left - 6, y(tick) + 4, String(format: "%.1f", tick), anchor: "end"))
    }
    parts.append(axes(plotTop: plotTop, plotBottom: plotBottom))
    parts.append(verticalLabel("F1worst", plotTop: plotTop, plotBottom: plotBottom))
    let groupWidth = (width - left - right) / Double(max(models.count, 1))
    let boxWidth = min(60, groupWidth * 0.5)
    for (index, model) in models.enumerated() {
      let middle = center(index, of: models.count)
      parts.append(labels.svg(index, x: middle, axis: plotBottom))
      guard let box = BoxSummary(model.pairWorst) else {
        parts.append(text(middle, (plotTop + plotBottom) / 2, "no pairs", size: 10))
        continue
      }
      let x0 = middle - boxWidth / 2
      parts.append(
        "<line x1=\"\(f(middle))\" y1=\"\(f(y(box.lowerWhisker)))\" x2=\"\(f(middle))\" y2=\"\(f(y(box.upperWhisker)))\" stroke=\"#333\"/>"
      )
      for whisker in [box.lowerWhisker, box.upperWhisker] {
        parts.append(
          "<line x1=\"\(f(middle - boxWidth / 4))\" y1=\"\(f(y(whisker)))\" x2=\"\(f(middle + boxWidth / 4))\" y2=\"\(f(y(whisker)))\" stroke=\"#333\"/>"
        )
      }
      parts.append(
        "<rect x=\"\(f(x0))\" y=\"\(f(y(box.upperQuartile)))\" width=\"\(f(boxWidth))\" height=\"\(f(max(y(box.lowerQuartile) - y(box.upperQuartile), 0.5)))\" fill=\"\(boxColor)\" stroke=\"#333\"><title>\(escapedXML(model.label)): quartiles \(formatted(box.lowerQuartile)), \(formatted(box.median)), \(formatted(box.upperQuartile)) over \(model.pairWorst.count) pairs</title></rect>"
      )
      parts.append(
        "<line x1=\"\(f(x0))\" y1=\"\(f(y(box.median)))\" x2=\"\(f(x0 + boxWidth))\" y2=\"\(f(y(box.median)))\" stroke=\"#111\" stroke-width=\"2\"/>"
      )
      // The median beside its box where the column has room for it, else above the whisker.
      let median = formatted(box.median)
      if (groupWidth - boxWidth) / 2 >= estimatedTextWidth(median, size: 10) + 6 {
        parts.append(text(x0 + boxWidth + 3, y(box.median) + 4, median, anchor: "start", size: 10))
      } else {
        parts.append(text(middle, y(box.upperWhisker) - 5, median, size: 10))
      }
      for outlier in box.outliers {
        parts.append(
          "<circle cx=\"\(f(middle))\" cy=\"\(f(y(outlier)))\" r=\"2\" fill=\"none\" stroke=\"#555\" stroke-opacity=\"0.6\"/>"
        )
      }
    }
    return parts
  }

  private static func verticalLabel(_ content: String, plotTop: Double, plotBottom: Double) -> String {
    let y = (plotTop + plotBottom) / 2
    return
      "<text transform=\"translate(\(f(left - 55)) \(f(y))) rotate(-90)\" text-anchor=\"middle\">\(escapedXML(content))</text>"
  }

  private static func axes(plotTop: Double, plotBottom: Double) -> String {
    "<path d=\"M\(f(left)) \(f(plotTop)) V\(f(plotBottom)) H\(f(width - right))\" fill=\"none\" stroke=\"#333\"/>"
  }
}

// pretrain-loss.svg: the SimCLR loss per step (left axis) and the contrastive top-1 accuracy of
// the positives among the global batch (right axis, 0 to 1); below them, when the run was
// monitored, the kNN validation mean F1 of the backbone per epoch against its initial (random)
// value.
import CelebAFormat
import Fairness
import Foundation

public struct PretrainPoint: Sendable {
  public let step: Int
  public let loss: Double
  public let top1: Double?

  public init(step: Int, loss: Double, top1: Double?) {
    self.step = step
    self.loss = loss
    self.top1 = top1
  }
}

/// The representation monitor's figure at a step (step 0: the initial, random backbone).
public struct MonitorPoint: Sendable, Equatable {
  public let step: Int
  public let knnMeanF1: Double

  public init(step: Int, knnMeanF1: Double) {
    self.step = step
    self.knnMeanF1 = knnMeanF1
  }
}

public enum LossCurve {
  /// The monitor's points of a metrics.jsonl (records with a step and `knn_mean_f1`), in order.
  public static func monitor(metrics: URL) throws -> [MonitorPoint] {
    try records(metrics).compactMap { object in
      guard let step = object["step"] as? Int, let value = (object["knn_mean_f1"] as? NSNumber)?.doubleValue else { return nil }
      return MonitorPoint(step: step, knnMeanF1: value)
    }
  }

  static func records(_ metrics: URL) throws -> [[String: Any]] {
    let text = try String(contentsOf: metrics, encoding: .utf8)
    return try text.split(separator: "\n").enumerated().compactMap { number, line in
      if line.isEmpty { return nil }
      guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
        throw InputError(file: metrics.path, line: number + 1, "is not a JSON record; the metrics file was damaged.")
      }
      return object
    }
  }

  /// The points of a training run's metrics.jsonl (records with a step and a loss).
  public static func points(metrics: URL) throws -> [PretrainPoint] {
    try records(metrics).compactMap { object in
      guard let step = object["step"] as? Int, let loss = (object["loss"] as? NSNumber)?.doubleValue else { return nil }
      return PretrainPoint(step: step, loss: loss, top1: (object["contrastive_top1_accuracy"] as? NSNumber)?.doubleValue)
    }
  }

  public static func svg(_ points: [PretrainPoint], monitor: [MonitorPoint] = [], title: String = "SimCLR pretraining") -> String {
    let width = 720.0
    let panel = 320.0
    let height = panel + (monitor.isEmpty ? 0 : 240)
    let left = 60.0
    let right = width - 60
    let top = 40.0
    let bottom = panel - 45
    let steps = max(points.map(\.step).max() ?? 1, 1)
    let losses = points.map(\.loss).filter(\.isFinite)
    let high = (losses.max() ?? 1) * 1.05
    let low = max(0, (losses.min() ?? 0) * 0.95)
    func x(_ step: Int) -> Double { left + Double(step) / Double(steps) * (right - left) }
    func yLoss(_ v: Double) -> Double { bottom - (v - low) / max(high - low, 1e-9) * (bottom - top) }
    func yAccuracy(_ v: Double) -> Double { bottom - v * (bottom - top) }
    func f(_ v: Double) -> String { String(format: "%.1f", v) }
    // Thin long runs to at most 600 points per line.
    let stride = max(1, points.count / 600)
    let shown = points.enumerated().filter { $0.offset % stride == 0 || $0.offset == points.count - 1 }.map(\.element)
    let lossPath = shown.filter { $0.loss.isFinite }.map { "\(f(x($0.step))),\(f(yLoss($0.loss)))" }.joined(separator: " ")
    let accuracyPath = shown.compactMap { p in p.top1.map { "\(f(x(p.step))),\(f(yAccuracy($0)))" } }.joined(separator: " ")
    var ticks = ""
    for i in 0...4 {
      let fraction = Double(i) / 4
      let lossValue = low + fraction * (high - low)
      ticks += "<text x=\"\(f(left - 6))\" y=\"\(f(yLoss(lossValue) + 4))\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.2f", lossValue))</text>\n"
      ticks += "<text x=\"\(f(right + 6))\" y=\"\(f(yAccuracy(fraction) + 4))\" font-size=\"11\" fill=\"#d95f02\">\(String(format: "%.2f", fraction))</text>\n"
      ticks += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(yAccuracy(fraction)))\" y2=\"\(f(yAccuracy(fraction)))\" stroke=\"#eee\"/>\n"
      let step = Int((fraction * Double(steps)).rounded())
      ticks += "<text x=\"\(f(x(step)))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\" font-size=\"11\">\(step)</text>\n"
    }
    let last = points.last
    let caption = last.map { p in
      String(format: "loss %.3f -> %.3f", points.first!.loss, p.loss) + (p.top1.map { String(format: ", top-1 %.2f -> %.2f", points.first!.top1 ?? 0, $0) } ?? "")
    } ?? "no steps"
    let heading = fittedText("\(title): \(caption)", width: width - 20, size: 14, minimum: 10)
    return """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif">
      <title>\(escapedXML(title))</title>
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(f(width / 2))" y="20" text-anchor="middle" font-size="\(f(heading.size))">\(escapedXML(heading.text))</text>
      \(ticks)<line x1="\(f(left))" x2="\(f(right))" y1="\(f(bottom))" y2="\(f(bottom))" stroke="#333"/>
      <line x1="\(f(left))" x2="\(f(left))" y1="\(f(top))" y2="\(f(bottom))" stroke="#333"/>
      <line x1="\(f(right))" x2="\(f(right))" y1="\(f(top))" y2="\(f(bottom))" stroke="#333"/>
      <polyline points="\(lossPath)" fill="none" stroke="#1b6ac9" stroke-width="1.5"/>
      <polyline points="\(accuracyPath)" fill="none" stroke="#d95f02" stroke-width="1.5"/>
      <text x="\(f((left + right) / 2))" y="\(f(panel - 8))" text-anchor="middle" font-size="12">step</text>
      <text x="16" y="\(f((top + bottom) / 2))" text-anchor="middle" font-size="12" fill="#1b6ac9" transform="rotate(-90 16 \(f((top + bottom) / 2)))">NT-Xent loss</text>
      <text x="\(f(width - 14))" y="\(f((top + bottom) / 2))" text-anchor="middle" font-size="12" fill="#d95f02" transform="rotate(90 \(f(width - 14)) \(f((top + bottom) / 2)))">top-1 of the positive among the global batch</text>
      \(monitorPanel(monitor, steps: steps, top: panel + 20, bottom: height - 45, left: left, right: right, x: x))</svg>

      """
  }

  /// The monitor's panel: kNN validation mean F1 per epoch (green), and the initial backbone's
  /// value as a dashed reference line.
  static func monitorPanel(
    _ monitor: [MonitorPoint], steps: Int, top: Double, bottom: Double, left: Double, right: Double, x: (Int) -> Double
  ) -> String {
    guard !monitor.isEmpty else { return "" }
    func f(_ v: Double) -> String { String(format: "%.1f", v) }
    let values = monitor.map(\.knnMeanF1)
    let low = max(0, (values.min() ?? 0) - 0.02)
    let high = min(1, (values.max() ?? 1) + 0.02)
    func y(_ v: Double) -> Double { bottom - (v - low) / max(high - low, 1e-9) * (bottom - top) }
    let path = monitor.map { "\(f(x($0.step))),\(f(y($0.knnMeanF1)))" }.joined(separator: " ")
    let dots = monitor.map { "<circle cx=\"\(f(x($0.step)))\" cy=\"\(f(y($0.knnMeanF1)))\" r=\"2.5\" fill=\"#1b9e77\"/>" }.joined(separator: "\n")
    var out = ""
    for i in 0...4 {
      let value = low + Double(i) / 4 * (high - low)
      out += "<text x=\"\(f(left - 6))\" y=\"\(f(y(value) + 4))\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.3f", value))</text>\n"
      out += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(y(value)))\" y2=\"\(f(y(value)))\" stroke=\"#eee\"/>\n"
    }
    if let initial = monitor.first(where: { $0.step == 0 }) {
      out += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(y(initial.knnMeanF1)))\" y2=\"\(f(y(initial.knnMeanF1)))\" stroke=\"#777\" stroke-dasharray=\"5 4\"/>\n"
      out += "<text x=\"\(f(right - 4))\" y=\"\(f(y(initial.knnMeanF1) - 5))\" text-anchor=\"end\" font-size=\"11\" fill=\"#555\">initial (random) backbone \(String(format: "%.3f", initial.knnMeanF1))</text>\n"
    }
    let caption = String(format: "kNN validation mean F1 of the backbone: %.3f -> %.3f", values.first!, values.last!)
    return out + """
      <text x="\(f((left + right) / 2))" y="\(f(top - 4))" text-anchor="middle" font-size="13">\(escapedXML(caption))</text>
      <line x1="\(f(left))" x2="\(f(right))" y1="\(f(bottom))" y2="\(f(bottom))" stroke="#333"/>
      <line x1="\(f(left))" x2="\(f(left))" y1="\(f(top))" y2="\(f(bottom))" stroke="#333"/>
      <polyline points="\(path)" fill="none" stroke="#1b9e77" stroke-width="1.5"/>
      \(dots)
      <text x="16" y="\(f((top + bottom) / 2))" text-anchor="middle" font-size="12" fill="#1b9e77" transform="rotate(-90 16 \(f((top + bottom) / 2)))">kNN mean F1 (val)</text>

      """
  }
}

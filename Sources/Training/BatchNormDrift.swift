// The mechanism the paper gives for its finding: a SimCLR backbone's BatchNorm running statistics
// were accumulated on heavily augmented views and do not match the plain fine-tuning images.
// This measures, per BatchNorm layer, the statistics of the fine-tuning data under a backbone and
// the distance between two sets of statistics (mean absolute difference of the channel means and
// of the log-variances).
import Data
import Foundation
import NN

public struct LayerStatistics: Sendable {
  /// The layer's name (torchvision's module path, e.g. `layer2.0.bn1`).
  public let name: String
  public let mean: [Float]
  public let variance: [Float]

  public init(name: String, mean: [Float], variance: [Float]) {
    self.name = name
    self.mean = mean
    self.variance = variance
  }
}

public enum BatchNormDrift {
  /// The running statistics a model holds.
  public static func running(_ model: ResNet) -> [LayerStatistics] {
    model.batchNorms.map { bn in
      LayerStatistics(
        name: String(bn.runningMean.name.dropLast(".running_mean".count)), mean: Array(UnsafeBufferPointer(start: bn.runningMean.value!, count: bn.channels)),
        variance: Array(UnsafeBufferPointer(start: bn.runningVariance.value!, count: bn.channels)))
    }
  }

  /// The statistics of `images` (plain, not augmented) at every BatchNorm layer of `model`: each
  /// layer normalises with the batch statistics, as when BN statistics are updated, and the
  /// per-batch means and unbiased variances are averaged over the batches. The model's running
  /// statistics and modes are left as they were.
  public static func measure(_ model: ResNet, dataset: PackedDataset, images: [Int], batch: Int, threads: Int) -> [LayerStatistics] {
    let norms = model.batchNorms
    let saved = running(model)
    let modes = norms.map { ($0.momentum, $0.training, $0.batchesTracked.value![0]) }
    defer {
      for (index, bn) in norms.enumerated() {
        for c in 0..<bn.channels {
          bn.runningMean.value![c] = saved[index].mean[c]
          bn.runningVariance.value![c] = saved[index].variance[c]
        }
        (bn.momentum, bn.training, bn.batchesTracked.value![0]) = modes[index]
      }
    }
    let steps = (images.count + batch - 1) / batch
    let loader = BatchLoader(
      dataset: dataset, schedule: BatchSchedule(steps: steps) { step in Array(images[(step * batch)..<min(images.count, (step + 1) * batch)]) },
      transform: .none, threads: threads, seed: 0)
    model.setBatchNormTraining(true)
    var seen = 0
    while let b = loader.next() {
      // A cumulative average: batch k gets weight 1/(k+1).
      for bn in norms { bn.momentum = 1 / Float(seen + 1) }
      _ = model.forward(FeatureMap(data: b.images.data, batch: b.indices.count, height: dataset.imageSize, width: dataset.imageSize, channels: 3))
      seen += 1
    }
    return running(model)
  }

  /// The distance between two sets of a layer's statistics in units the layers share: the mean over
  /// channels of |mu_a - mu_b| / sigma (sigma the standard deviation of `reference`, the data's,
  /// so 1 means a whole standard deviation of the data) and of |log(var_a / var_b)| (scale-free
  /// already). Raw differences of means are not comparable across layers, whose activations
  /// have different scales.
  public static func distance(_ a: LayerStatistics, _ b: LayerStatistics, reference: LayerStatistics) -> (mean: Double, logVariance: Double) {
    let n = min(a.mean.count, b.mean.count, reference.variance.count)
    guard n > 0 else { return (.nan, .nan) }
    var dm = 0.0
    var dv = 0.0
    for c in 0..<n {
      // A channel the data never excites (a dead ReLU upstream) has no spread to measure by; its
      // floor keeps it from dominating the mean.
      let sigma = max(Double(reference.variance[c]).squareRoot(), 1e-3)
      dm += abs(Double(a.mean[c]) - Double(b.mean[c])) / sigma
      dv += abs(log(max(Double(a.variance[c]), 1e-12)) - log(max(Double(b.variance[c]), 1e-12)))
    }
    return (dm / Double(n), dv / Double(n))
  }

  /// Per layer, the standardised distance of `statistics` from the data's, and its mean over the
  /// layers (the last element, named "mean over layers").
  public static func distances(of statistics: [LayerStatistics], from data: [LayerStatistics]) -> [(layer: String, mean: Double, logVariance: Double)] {
    var rows: [(layer: String, mean: Double, logVariance: Double)] = []
    for (own, layer) in zip(statistics, data) {
      let d = distance(own, layer, reference: layer)
      rows.append((layer.name, d.mean, d.logVariance))
    }
    let n = Double(max(rows.count, 1))
    rows.append(("mean over layers", rows.reduce(0) { $0 + $1.mean } / n, rows.reduce(0) { $0 + $1.logVariance } / n))
    return rows
  }

  /// bn-statistics.md: per layer, the distance of the pretrained statistics from those of the
  /// fine-tuning data, and for each fine-tuned model how far its statistics are from the data's
  /// and how far they moved from the pretrained ones; a last row averages over the layers.
  public static func markdown(data: [LayerStatistics], pretrained: [LayerStatistics], models: [(label: String, statistics: [LayerStatistics])], images: Int) -> (markdown: String, csv: String) {
    var text = "# BatchNorm statistics: pretrained vs the fine-tuning data\n\n"
    text += "Per BatchNorm layer, d = mean over channels of |mu_a - mu_b| / sigma / mean over channels of |log(var_a / var_b)|, sigma being the channel's standard deviation over the data, so that layers are comparable: a mean distance of 1 is a whole standard deviation of the data. "
    text += "\"data\" is the statistics of \(images) plain (unaugmented) train images passed through the pretrained backbone with batch statistics; "
    text += "\"to data\" is a model's running statistics against them (a model whose statistics match the fine-tuning images has 0); "
    text += "\"moved\" is how far fine-tuning moved the running statistics from the pretrained ones. "
    text += "Full fine-tuning and the supervised model also change the weights, so their statistics describe other features than the data's column measures; their distances are shown for completeness, not as a like-for-like comparison.\n\n"
    var header = ["layer", "channels", "pretrained to data"]
    for m in models { header += ["\(m.label) to data", "\(m.label) moved"] }
    var rows: [[String]] = []
    var csv = ["layer,channels,model,to_data_mean,to_data_log_variance,moved_mean,moved_log_variance"]
    var sums = [Double](repeating: 0, count: 2 + 4 * models.count)
    func pair(_ d: (mean: Double, logVariance: Double)) -> String { String(format: "%.3f / %.3f", d.mean, d.logVariance) }
    for (index, layer) in data.enumerated() {
      let pre = pretrained[index]
      let toData = distance(pre, layer, reference: layer)
      var row = [layer.name, "\(layer.mean.count)", pair(toData)]
      sums[0] += toData.mean
      sums[1] += toData.logVariance
      csv.append("\(layer.name),\(layer.mean.count),pretrained,\(toData.mean),\(toData.logVariance),0,0")
      for (m, model) in models.enumerated() {
        let own = model.statistics[index]
        let d = distance(own, layer, reference: layer)
        let moved = distance(own, pre, reference: layer)
        row += [pair(d), pair(moved)]
        sums[2 + 4 * m] += d.mean
        sums[3 + 4 * m] += d.logVariance
        sums[4 + 4 * m] += moved.mean
        sums[5 + 4 * m] += moved.logVariance
        csv.append("\(layer.name),\(layer.mean.count),\(model.label),\(d.mean),\(d.logVariance),\(moved.mean),\(moved.logVariance)")
      }
      rows.append(row)
    }
    let n = Double(max(data.count, 1))
    var mean = ["mean over layers", "", String(format: "%.3f / %.3f", sums[0] / n, sums[1] / n)]
    for m in models.indices {
      mean += [String(format: "%.3f / %.3f", sums[2 + 4 * m] / n, sums[3 + 4 * m] / n), String(format: "%.3f / %.3f", sums[4 + 4 * m] / n, sums[5 + 4 * m] / n)]
    }
    var summary = String(format: "Mean over the %d layers: the pretrained statistics are %.3f (means, in the data's standard deviations) / %.3f (log-variances) from the data's.", data.count, sums[0] / n, sums[1] / n)
    for (m, model) in models.enumerated() {
      summary += String(format: " %@: %.3f / %.3f from the data's (moved %.3f / %.3f).", model.label, sums[2 + 4 * m] / n, sums[3 + 4 * m] / n, sums[4 + 4 * m] / n, sums[5 + 4 * m] / n)
    }
    text += summary + "\n\n"
    text += "| " + header.joined(separator: " | ") + " |\n|" + header.map { _ in "---" }.joined(separator: "|") + "|\n"
    for row in [mean] + rows { text += "| " + row.joined(separator: " | ") + " |\n" }
    return (text, csv.joined(separator: "\n") + "\n")
  }
}

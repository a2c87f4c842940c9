// Mean F1 over the attributes (the usual accuracy summary of a 40-way attribute classifier),
// counted image by image: the plain definition that the pair counts' all-images row
// (FairnessSummary.meanF1, and with it every bootstrap resample) is held to in the tests.

public enum MeanF1 {
  /// The mean over attributes of F1 with each image counted `weight(image)` times.
  static func value(_ outcomes: Outcomes, weights: [UInt32]?) -> Double {
    let a = outcomes.attributeCount
    var truePositives = [Int](repeating: 0, count: a)
    var predicted = [Int](repeating: 0, count: a)
    var positives = [Int](repeating: 0, count: a)
    for image in 0..<outcomes.imageCount {
      let w = Int(weights?[image] ?? 1)
      if w == 0 { continue }
      for k in 0..<a {
        let y = outcomes.labels[image * a + k]
        let p = outcomes.predictions[image * a + k]
        if y { positives[k] += w }
        if p { predicted[k] += w }
        if y && p { truePositives[k] += w }
      }
    }
    var total = 0.0
    for k in 0..<a { total += f1(truePositives: truePositives[k], predicted: predicted[k], positives: positives[k]) }
    return a == 0 ? .nan : total / Double(a)
  }

  public static func value(_ outcomes: Outcomes) -> Double { value(outcomes, weights: nil) }

  /// The mean F1 of each model on `count` resamples (resample r is the same draw of images for
  /// every model, and the same as the fairness bootstrap's resample r with the same seed).
  public static func resampled(_ models: [Outcomes], count: Int, seed: UInt64) -> [[Double]] {
    guard let first = models.first else { return [] }
    var results = models.map { _ in [Double](repeating: .nan, count: count) }
    for r in 0..<count {
      var weights = [UInt32](repeating: 0, count: first.imageCount)
      Bootstrap.forEachDraw(seed: seed, resample: r, imageCount: first.imageCount) { weights[$0] += 1 }
      for (m, model) in models.enumerated() { results[m][r] = value(model, weights: weights) }
    }
    return results
  }
}

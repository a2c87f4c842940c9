// The straightforward computation that the fast paths are timed and checked against: one pass
// over the test images for every (task, condition) pair.
import Dispatch

public enum PerPairBaseline {
  /// Pair counts over `images` (an image listed twice counts twice), with one pass per ordered
  /// pair (t, c) that counts t's true positives, predicted positives and positives in both
  /// subgroups of c.
  public static func counts(_ outcomes: Outcomes, images: [Int]) -> PairCounts {
    let attributeCount = outcomes.attributeCount
    var counts = PairCounts(attributeCount: attributeCount, imageCount: images.count)
    for condition in 0..<attributeCount {
      for task in 0..<attributeCount {
        var inside = (truePositives: 0, predicted: 0, positives: 0)
        var outside = inside
        for image in images {
          let label = outcomes.labels[image * attributeCount + task]
          let prediction = outcomes.predictions[image * attributeCount + task]
          if outcomes.labels[image * attributeCount + condition] {
            if label && prediction { inside.truePositives += 1 }
            if prediction { inside.predicted += 1 }
            if label { inside.positives += 1 }
          } else {
            if label && prediction { outside.truePositives += 1 }
            if prediction { outside.predicted += 1 }
            if label { outside.positives += 1 }
          }
        }
        let index = condition * attributeCount + task
        let total = attributeCount * attributeCount + task
        counts.truePositives[index] = inside.truePositives
        counts.predictedPositives[index] = inside.predicted
        counts.positives[index] = inside.positives
        counts.truePositives[total] = inside.truePositives + outside.truePositives
        counts.predictedPositives[total] = inside.predicted + outside.predicted
        counts.positives[total] = inside.positives + outside.positives
      }
    }
    return counts
  }

  /// The statistics of `count` resamples, drawn exactly as `Bootstrap.resample` draws them,
  /// each counted pair by pair; resamples run in parallel on all cores.
  public static func resample(_ outcomes: Outcomes, count: Int, seed: UInt64) -> [ResampleStatistic] {
    let selection = PairSelection(PairCounts.count(outcomes))
    var results = [ResampleStatistic?](repeating: nil, count: count)
    results.withUnsafeMutableBufferPointer { output in
      let output = output
      DispatchQueue.concurrentPerform(iterations: count) { resample in
        var images: [Int] = []
        images.reserveCapacity(outcomes.imageCount)
        Bootstrap.forEachDraw(seed: seed, resample: resample, imageCount: outcomes.imageCount) { images.append($0) }
        output[resample] = ResampleStatistic(FairnessSummary(counts(outcomes, images: images), selection: selection))
      }
    }
    return results.compactMap { $0 }
  }
}

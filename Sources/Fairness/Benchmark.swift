// Synthetic CelebA-sized labels and scores, and the timing of the fast paths against the
// per-pair baseline on them.
import CelebAFormat
import Foundation
import Support

public enum SyntheticScores {
  /// `imageCount` images with CelebA's 40 attributes: labels with CelebA's positive rates,
  /// correlated through one shared factor (the "Male" direction), and a model's scores that are
  /// noisy and shifted by that factor, so its errors differ between subgroups.
  public static func split(imageCount: Int, seed: UInt64) -> LabeledScores {
    let attributeCount = CelebA.attributeNames.count
    let cutoffs = CelebA.positiveRates.map { standardNormalQuantile(1 - $0) }
    let male = CelebA.index(of: "Male")!
    var generator = SplitMix64(seed: seed)
    var labels = [Bool](repeating: false, count: imageCount * attributeCount)
    var scores = [Double](repeating: 0, count: imageCount * attributeCount)
    for image in 0..<imageCount {
      let factor = generator.normalDouble()
      for attribute in 0..<attributeCount {
        let loading = CelebA.correlation(male, attribute)
        let latent = loading * factor + (1 - loading * loading).squareRoot() * generator.normalDouble()
        let label = latent > cutoffs[attribute]
        labels[image * attributeCount + attribute] = label
        scores[image * attributeCount + attribute] = (label ? 1.5 : -1.5) + generator.normalDouble() + 0.6 * factor
      }
    }
    let images = (0..<imageCount).map { String(format: "%06d.jpg", $0 + 1) }
    return LabeledScores(attributeNames: CelebA.attributeNames, images: images, labels: labels, scores: scores)
  }
}

/// Seconds taken by each path on synthetic data, and whether the fast and baseline paths gave
/// identical counts and statistics.
public struct BenchmarkResult: Sendable {
  public let trainImages: Int
  public let testImages: Int
  public let resamples: Int
  public let baselineResamples: Int
  public let cores: Int
  public let thresholdSeconds: Double
  public let countsSeconds: Double
  public let baselineCountsSeconds: Double
  public let bootstrapSeconds: Double
  public let baselineBootstrapSeconds: Double
  public let agree: Bool

  /// The baseline's bootstrap time scaled to all resamples when it ran on fewer.
  public var baselineBootstrapSecondsForAllResamples: Double {
    baselineBootstrapSeconds * Double(resamples) / Double(max(baselineResamples, 1))
  }
}

public enum FairnessBenchmark {
  public static func run(trainImages: Int, testImages: Int, resamples: Int, baselineResamples: Int, seed: UInt64)
    -> BenchmarkResult
  {
    let splits = EvaluationSplits(
      train: SyntheticScores.split(imageCount: trainImages, seed: seed),
      test: SyntheticScores.split(imageCount: testImages, seed: seed &+ 1))
    var thresholds: [Threshold] = []
    let thresholdSeconds = seconds { thresholds = Thresholds.calibrate(splits.train) }
    let outcomes = Outcomes(splits.test, thresholds: thresholds)
    var counts = PairCounts(attributeCount: 0, imageCount: 0)
    let countsSeconds = seconds { counts = PairCounts.count(outcomes) }
    var baselineCounts = counts
    let baselineCountsSeconds = seconds {
      baselineCounts = PerPairBaseline.counts(outcomes, images: Array(0..<outcomes.imageCount))
    }
    var statistics: [ResampleStatistic] = []
    let bootstrapSeconds = seconds {
      statistics = Bootstrap.resample([outcomes], count: resamples, seed: seed)[0]
    }
    var baselineStatistics: [ResampleStatistic] = []
    let baselineBootstrapSeconds = seconds {
      baselineStatistics = PerPairBaseline.resample(outcomes, count: baselineResamples, seed: seed)
    }
    let agree =
      counts == baselineCounts
      && zip(statistics, baselineStatistics).allSatisfy { fast, baseline in
        fast.gap == baseline.gap && fast.worst == baseline.worst && fast.allGap == baseline.allGap
          && fast.allWorst == baseline.allWorst
      }
    return BenchmarkResult(
      trainImages: trainImages, testImages: testImages, resamples: resamples,
      baselineResamples: baselineResamples, cores: ProcessInfo.processInfo.activeProcessorCount,
      thresholdSeconds: thresholdSeconds, countsSeconds: countsSeconds, baselineCountsSeconds: baselineCountsSeconds,
      bootstrapSeconds: bootstrapSeconds, baselineBootstrapSeconds: baselineBootstrapSeconds, agree: agree)
  }

  private static func seconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
  }
}

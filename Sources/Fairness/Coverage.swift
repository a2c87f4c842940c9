// Coverage of the bootstrap intervals by simulation: test sets drawn from a score model whose
// population values are known exactly, and how often each interval holds the population value.
import Foundation
import Support

/// K binary attributes with an explicit joint distribution over their 2^K patterns (an Ising
/// model: fields and pairwise couplings), and two models' predictions, independent given the
/// labels: P(prediction_t = 1 | y) = sigmoid(bias_t + signal_t (2 y_t - 1) + shift_t y_partner(t)).
/// The shift makes a task's errors depend on another attribute, so that subgroups differ. Every
/// population F1 is a ratio of exact sums over the patterns.
public struct ScoreModel: Sendable {
  public let attributeCount: Int
  /// P(y) for each pattern, bit a of the pattern index being attribute a.
  public let patterns: [Double]
  public let bias: [[Double]]
  public let signal: [[Double]]
  public let shift: [[Double]]
  public let partner: [Int]

  /// Eight attributes with CelebA-like marginals from 2% to 75% (rare conditions, common ones,
  /// and tasks of every frequency), some correlated, and two models of different fairness.
  public static let celebALike: ScoreModel = {
    let marginals = [0.02, 0.045, 0.09, 0.16, 0.3, 0.42, 0.55, 0.75]
    var couplings = [[Double]](repeating: [Double](repeating: 0, count: 8), count: 8)
    for (a, b, j) in [(0, 5, 1.2), (1, 3, 0.8), (2, 6, -0.7), (4, 7, 0.6), (3, 5, 0.5)] {
      couplings[a][b] = j
      couplings[b][a] = j
    }
    let partner = [5, 3, 6, 1, 7, 0, 2, 4]
    return ScoreModel(
      marginals: marginals, couplings: couplings, partner: partner,
      models: [
        (bias: [-0.3, -0.2, -0.2, 0.0, -0.1, 0.0, 0.1, 0.2], signal: [1.6, 1.4, 1.8, 1.5, 1.3, 2.0, 1.7, 1.6],
          shift: [0.9, -0.6, 0.5, 0.0, -0.4, 0.3, -0.8, 0.2]),
        (bias: [-0.2, -0.2, -0.1, 0.0, -0.1, 0.0, 0.1, 0.1], signal: [1.8, 1.5, 1.9, 1.6, 1.4, 2.1, 1.8, 1.7],
          shift: [0.3, -0.2, 0.2, 0.0, -0.1, 0.1, -0.3, 0.1]),
      ])
  }()

  /// The same eight marginals with the attributes independent (no couplings), so that a pair's
  /// gap comes from score noise alone: model 0's errors on a task depend a little on its partner
  /// attribute (shifts of 0 to 0.3, population pair differences of 0 to about 2 standard
  /// deviations of a pair's estimate at 2,000 test images), model 1's on nothing (every
  /// population gap 0, where |difference| is most biased).
  public static let independent: ScoreModel = {
    let marginals = [0.02, 0.045, 0.09, 0.16, 0.3, 0.42, 0.55, 0.75]
    let couplings = [[Double]](repeating: [Double](repeating: 0, count: 8), count: 8)
    return ScoreModel(
      marginals: marginals, couplings: couplings, partner: [5, 3, 6, 1, 7, 0, 2, 4],
      models: [
        (bias: [-0.3, -0.2, -0.2, 0.0, -0.1, 0.0, 0.1, 0.2], signal: [1.6, 1.4, 1.8, 1.5, 1.3, 2.0, 1.7, 1.6],
          shift: [0.3, -0.2, 0.25, 0.1, -0.15, 0.05, -0.2, 0.0]),
        (bias: [-0.3, -0.2, -0.2, 0.0, -0.1, 0.0, 0.1, 0.2], signal: [1.6, 1.4, 1.8, 1.5, 1.3, 2.0, 1.7, 1.6],
          shift: [0, 0, 0, 0, 0, 0, 0, 0]),
      ])
  }()

  /// Fields set so that each attribute's marginal is close to `marginals` (a few rounds of
  /// adjusting each field by its marginal's log-odds error).
  public init(marginals: [Double], couplings: [[Double]], partner: [Int], models: [(bias: [Double], signal: [Double], shift: [Double])]) {
    let k = marginals.count
    var fields = marginals.map { log($0 / (1 - $0)) }
    func distribution(_ fields: [Double]) -> [Double] {
      var weights = (0..<(1 << k)).map { pattern -> Double in
        var energy = 0.0
        for a in 0..<k where pattern >> a & 1 == 1 {
          energy += fields[a]
          for b in (a + 1)..<k where pattern >> b & 1 == 1 { energy += couplings[a][b] }
        }
        return exp(energy)
      }
      let total = weights.reduce(0, +)
      for i in weights.indices { weights[i] /= total }
      return weights
    }
    var p = distribution(fields)
    for _ in 0..<200 {
      for a in 0..<k {
        let m = p.indices.filter { $0 >> a & 1 == 1 }.reduce(0) { $0 + p[$1] }
        fields[a] += log(marginals[a] / (1 - marginals[a])) - log(m / (1 - m))
      }
      p = distribution(fields)
    }
    attributeCount = k
    patterns = p
    bias = models.map(\.bias)
    signal = models.map(\.signal)
    shift = models.map(\.shift)
    self.partner = partner
  }

  public var modelCount: Int { bias.count }

  private init(copying model: ScoreModel, bias: [[Double]], signal: [[Double]], shift: [[Double]]) {
    attributeCount = model.attributeCount
    patterns = model.patterns
    partner = model.partner
    self.bias = bias
    self.signal = signal
    self.shift = shift
  }

  /// The same model with one more predictor: the trivial one, every image positive on every task
  /// (its P(prediction = 1) is sigmoid(40), 1 in double precision).
  public func addingTrivialPredictor() -> ScoreModel {
    let k = attributeCount
    return ScoreModel(
      copying: self, bias: bias + [[Double](repeating: 40, count: k)], signal: signal + [[Double](repeating: 0, count: k)],
      shift: shift + [[Double](repeating: 0, count: k)])
  }

  /// The population balance rho(c) = min(P(c), P(-c)) of every attribute.
  public var populationRho: [Double] {
    (0..<attributeCount).map { a in
      let p = patterns.indices.filter { $0 >> a & 1 == 1 }.reduce(0) { $0 + patterns[$1] }
      return min(p, 1 - p)
    }
  }

  /// P(prediction_t = 1 | pattern) for model `m`.
  func predictionProbability(model m: Int, task t: Int, pattern: Int) -> Double {
    let y = Double(pattern >> t & 1)
    let z = bias[m][t] + signal[m][t] * (2 * y - 1) + shift[m][t] * Double(pattern >> partner[t] & 1)
    return 1 / (1 + exp(-z))
  }

  /// The population's expected counts per image (rates) in the layout of `PairCounts`, for
  /// model `m`: true positives, predicted positives and positives per (condition, task), with the
  /// all-images row last.
  public func populationRates(model m: Int) -> (truePositives: [Double], predicted: [Double], positives: [Double]) {
    let k = attributeCount
    var tp = [Double](repeating: 0, count: (k + 1) * k)
    var pp = tp
    var pos = tp
    for pattern in patterns.indices {
      let weight = patterns[pattern]
      for t in 0..<k {
        let q = predictionProbability(model: m, task: t, pattern: pattern)
        let y = Double(pattern >> t & 1)
        for c in 0...k where c == k || pattern >> c & 1 == 1 {
          tp[c * k + t] += weight * y * q
          pp[c * k + t] += weight * q
          pos[c * k + t] += weight * y
        }
      }
    }
    return (tp, pp, pos)
  }

  /// The population values of model `m` over the pairs `selection` uses.
  public func population(model m: Int, selection: PairSelection) -> PopulationValues {
    let k = attributeCount
    let (tp, pp, pos) = populationRates(model: m)
    func f1(_ t: Double, _ p: Double, _ y: Double) -> Double { p + y == 0 ? 0 : 2 * t / (p + y) }
    var gap = [Double?](repeating: nil, count: k)
    var worst = gap
    for c in 0..<k {
      var sums = (gap: 0.0, worst: 0.0, used: 0)
      for t in 0..<k where selection.included[c * k + t] {
        let inside = f1(tp[c * k + t], pp[c * k + t], pos[c * k + t])
        let outside = f1(tp[k * k + t] - tp[c * k + t], pp[k * k + t] - pp[c * k + t], pos[k * k + t] - pos[c * k + t])
        sums.gap += abs(inside - outside)
        sums.worst += min(inside, outside)
        sums.used += 1
      }
      if sums.used > 0 {
        gap[c] = sums.gap / Double(sums.used)
        worst[c] = sums.worst / Double(sums.used)
      }
    }
    let meanF1 = (0..<k).reduce(0.0) { $0 + f1(tp[k * k + $1], pp[k * k + $1], pos[k * k + $1]) } / Double(k)
    return PopulationValues(
      gap: gap, worst: worst, allGap: median(gap.compactMap { $0 }), allWorst: median(worst.compactMap { $0 }), meanF1: meanF1)
  }

  /// A test set of `images` images with every model's predictions.
  public func draw(images n: Int, seed: UInt64) -> [Outcomes] {
    var rng = SplitMix64(seed: seed, stream: 0)
    var cumulative = [Double]()
    var running = 0.0
    for p in patterns {
      running += p
      cumulative.append(running)
    }
    let k = attributeCount
    var labels = [Bool](repeating: false, count: n * k)
    var predictions = [[Bool]](repeating: labels, count: modelCount)
    for image in 0..<n {
      let u = rng.uniformDouble() * running
      var low = 0
      var high = cumulative.count - 1
      while low < high {
        let middle = (low + high) / 2
        if cumulative[middle] < u { low = middle + 1 } else { high = middle }
      }
      for t in 0..<k {
        labels[image * k + t] = low >> t & 1 == 1
        for m in 0..<modelCount { predictions[m][image * k + t] = rng.uniformDouble() < predictionProbability(model: m, task: t, pattern: low) }
      }
    }
    return predictions.map { Outcomes(attributeCount: k, imageCount: n, labels: labels, predictions: $0) }
  }
}

/// A model's population values, over a given pair selection.
public struct PopulationValues: Sendable {
  public let gap: [Double?]
  public let worst: [Double?]
  public let allGap: Double?
  public let allWorst: Double?
  public let meanF1: Double
}

/// How often intervals held the population value, per statistic and method.
public struct CoverageTally: Sendable {
  public var covered = 0
  public var trials = 0
  public var width = 0.0
  /// Sum of (estimate - population value): the estimator's bias, as an average.
  public var error = 0.0

  mutating func add(_ interval: Interval?, truth: Double?) {
    guard let interval, let truth else { return }
    trials += 1
    if interval.contains(truth) { covered += 1 }
    width += interval.high - interval.low
    error += interval.estimate - truth
  }

  public var rate: Double { trials == 0 ? .nan : Double(covered) / Double(trials) }
  public var meanWidth: Double { trials == 0 ? .nan : width / Double(trials) }
  public var bias: Double { trials == 0 ? .nan : error / Double(trials) }
}

public enum CoverageSimulation {
  /// The statistics whose intervals are checked: gap and worst of a rare and a common
  /// condition, "all", mean F1, and the paired differences of model 0 minus model 1.
  public static let statistics = [
    "gap, rare c (2%)", "worst, rare c (2%)", "gap, rare c (9%)", "worst, rare c (9%)", "gap, common c (42%)", "worst, common c (42%)",
    "all gap", "all worst", "mean F1", "difference: all gap", "difference: all worst", "difference: mean F1",
  ]

  /// `draws` test sets of `images` images from `model`, each with `resamples` bootstrap resamples;
  /// the coverage of nominal `level` intervals by every method, per statistic.
  public static func run(
    _ model: ScoreModel = .celebALike, draws: Int, images: Int, resamples: Int, level: Double = 0.95,
    minimumSupport: Int = PairSelection.defaultMinimum, seed: UInt64 = 1
  ) -> [IntervalMethod: [String: CoverageTally]] {
    let conditions = (rare: 0, rareNine: 2, common: 5)
    var tallies: [IntervalMethod: [String: CoverageTally]] = [:]
    for method in IntervalMethod.allCases { tallies[method] = Dictionary(uniqueKeysWithValues: statistics.map { ($0, CoverageTally()) }) }
    for draw in 0..<draws {
      let outcomes = model.draw(images: images, seed: seed &+ UInt64(draw) &* 0x9E37_79B9)
      let selection = PairSelection(PairCounts.count(outcomes[0]), minimum: minimumSupport)
      let truths = (0..<2).map { model.population(model: $0, selection: selection) }
      let estimates = outcomes.map { ResampleStatistic(FairnessSummary(PairCounts.count($0), selection: selection)) }
      let resampled = Bootstrap.resample(outcomes, count: resamples, seed: UInt64(draw) &+ 17, selection: selection)
      let models = (0..<2).map { Resampled(estimate: estimates[$0], resamples: resampled[$0], selection: selection) }
      func subtract(_ a: Double?, _ b: Double?) -> Double? { a.flatMap { a in b.map { a - $0 } } }
      for method in IntervalMethod.allCases {
        let one = BootstrapIntervals(models[0], level: level, method: method)
        let both = BootstrapIntervals(difference: models[0], models[1], level: level, method: method)
        let cases: [(String, Interval?, Double?)] = [
          (statistics[0], one.gap[conditions.rare], truths[0].gap[conditions.rare]),
          (statistics[1], one.worst[conditions.rare], truths[0].worst[conditions.rare]),
          (statistics[2], one.gap[conditions.rareNine], truths[0].gap[conditions.rareNine]),
          (statistics[3], one.worst[conditions.rareNine], truths[0].worst[conditions.rareNine]),
          (statistics[4], one.gap[conditions.common], truths[0].gap[conditions.common]),
          (statistics[5], one.worst[conditions.common], truths[0].worst[conditions.common]),
          (statistics[6], one.allGap, truths[0].allGap),
          (statistics[7], one.allWorst, truths[0].allWorst),
          (statistics[8], one.meanF1, truths[0].meanF1),
          (statistics[9], both.allGap, subtract(truths[0].allGap, truths[1].allGap)),
          (statistics[10], both.allWorst, subtract(truths[0].allWorst, truths[1].allWorst)),
          (statistics[11], both.meanF1, truths[0].meanF1 - truths[1].meanF1),
        ]
        for (name, interval, truth) in cases { tallies[method]![name]!.add(interval, truth: truth) }
      }
    }
    return tallies
  }

  /// Finding (d)'s interval (`TrendDifference`): `draws` test sets of `images` images
  /// from `model` with the trivial predictor added; how often the interval of the trend of the gap
  /// with rho of each of the model's predictors minus the trivial predictor's holds the population
  /// value (the trend of the population gaps on the ranks of the population rho, over the
  /// conditions the draw uses), its mean width and the estimate's mean error.
  public static func trendDifference(
    _ model: ScoreModel = .celebALike, draws: Int, images: Int, resamples: Int, level: Double = 0.95,
    minimumSupport: Int = PairSelection.defaultMinimum, seed: UInt64 = 1
  ) -> [CoverageTally] {
    let full = model.addingTrivialPredictor()
    let trivial = full.modelCount - 1
    let rho = full.populationRho
    var tallies = [CoverageTally](repeating: CoverageTally(), count: trivial)
    for draw in 0..<draws {
      let outcomes = full.draw(images: images, seed: seed &+ UInt64(draw) &* 0x9E37_79B9)
      let selection = PairSelection(PairCounts.count(outcomes[0]), minimum: minimumSupport)
      let summaries = outcomes.map { FairnessSummary(PairCounts.count($0), selection: selection) }
      let resampled = Bootstrap.resample(outcomes, count: resamples, seed: UInt64(draw) &+ 17, selection: selection)
      let models = outcomes.indices.map { Resampled(estimate: ResampleStatistic(summaries[$0]), resamples: resampled[$0], selection: selection) }
      let truths = (0...trivial).map { full.population(model: $0, selection: selection).gap }
      for m in 0..<trivial {
        let measured = TrendDifference(models[m], models[trivial], rho: summaries[m].rho, level: level)
        let used = rho.indices.filter { truths[m][$0] != nil && truths[trivial][$0] != nil && models[m].estimate.gap[$0] != nil && models[trivial].estimate.gap[$0] != nil }
        let truth = rankTrend(used.map { rho[$0] }, used.map { truths[m][$0]! }) - rankTrend(used.map { rho[$0] }, used.map { truths[trivial][$0]! })
        tallies[m].add(measured.difference, truth: truth.isFinite ? truth : nil)
      }
    }
    return tallies
  }

  /// The coverage table in Markdown: one row per statistic, coverage, mean width and bias of
  /// the estimate for each method.
  public static func markdown(_ tallies: [IntervalMethod: [String: CoverageTally]], level: Double) -> String {
    let methods = IntervalMethod.allCases
    var text = "| statistic | " + methods.map { "\($0.rawValue): coverage | width | bias" }.joined(separator: " | ") + " |\n"
    text += "|---|" + methods.map { _ in "---|---|---|" }.joined() + "\n"
    for name in statistics {
      text += "| \(name) | " + methods.map { method in
        let t = tallies[method]![name]!
        return String(format: "%.1f%% (%d) | %.3f | %+.4f", 100 * t.rate, t.trials, t.meanWidth, t.bias)
      }.joined(separator: " | ") + " |\n"
    }
    return text
  }
}

// The paper's fairness metrics from pair counts: which pairs are defined and used, F1 per
// subgroup, F1 gap and worst-group F1 per pair and per attribute, their median over attributes
// ("all"), and rho.

/// Which (task, condition) pairs a summary uses. A pair is defined only when both of its
/// subgroups (c true, c false) hold a positive of the task: F1 of a subgroup without positives
/// is 0/0 or 0 whatever the model does, so such a pair says nothing about fairness and would drag
/// worst to 0 and inflate the gap. Pairs whose smaller subgroup has fewer than `minimum`
/// positives are excluded too: their F1 is too noisy to be estimated (see docs/statistics.md).
/// The set is decided once, on the evaluated test split, and resamples keep it, so that every
/// resample estimates the same quantity.
public struct PairSelection: Equatable, Sendable {
  public let attributeCount: Int
  public let minimum: Int
  /// `included[condition * attributeCount + task]`.
  public let included: [Bool]
  /// min(positives of t where c, positives of t where not c) per pair (0 on the diagonal).
  public let support: [Int]
  /// Off-diagonal pairs of conditions that split the images, by why they are left out.
  public let undefined: Int
  public let belowMinimum: Int
  public var used: Int { included.filter { $0 }.count }

  /// The default minimum number of positives in each subgroup of a pair.
  public static let defaultMinimum = 10

  public init(_ counts: PairCounts, minimum: Int = PairSelection.defaultMinimum) {
    precondition(minimum >= 1, "a pair needs at least one positive in each subgroup")
    let k = counts.attributeCount
    var included = [Bool](repeating: false, count: k * k)
    var support = [Int](repeating: 0, count: k * k)
    var undefined = 0
    var belowMinimum = 0
    for condition in 0..<k {
      let inside = counts.imagesWhere(condition)
      guard inside > 0, inside < counts.imageCount else { continue }
      for task in 0..<k where task != condition {
        let index = condition * k + task
        let positives = counts.positives[index]
        let outside = counts.positives[k * k + task] - positives
        support[index] = min(positives, outside)
        if support[index] == 0 {
          undefined += 1
        } else if support[index] < minimum {
          belowMinimum += 1
        } else {
          included[index] = true
        }
      }
    }
    attributeCount = k
    self.minimum = minimum
    self.included = included
    self.support = support
    self.undefined = undefined
    self.belowMinimum = belowMinimum
  }

  /// The indices `condition * attributeCount + task` of the used pairs, in order, and the
  /// condition of each.
  public var usedPairs: [Int] { included.indices.filter { included[$0] } }
  public var usedConditions: [Int] { usedPairs.map { $0 / attributeCount } }

  /// Pairs used per condition c (the tasks its gap and worst average over).
  public var usedPerCondition: [Int] {
    (0..<attributeCount).map { c in (0..<attributeCount).filter { included[c * attributeCount + $0] }.count }
  }
}

/// Everything the paper reports for one model, for any number of attributes. Pair arrays are
/// indexed `[condition * attributeCount + task]`; they are nil on the diagonal, wherever a
/// subgroup has no image, and for pairs the selection leaves out.
public struct FairnessSummary: Sendable {
  public let attributeCount: Int
  public let imageCount: Int
  public let selection: PairSelection
  /// N(c): test images where c is true.
  public let conditionCounts: [Int]
  /// rho(c) = min(N(c), N(-c)) / (N(c) + N(-c)).
  public let rho: [Double]
  /// F1(t|c) and F1(t|-c), for every pair whose condition splits the images (used or not).
  public let f1GivenCondition: [Double?]
  public let f1GivenNotCondition: [Double?]
  /// |F1(t|c) - F1(t|-c)| and min(F1(t|c), F1(t|-c)), for the pairs the selection uses.
  public let pairGap: [Double?]
  public let pairWorst: [Double?]
  /// F1gap(c) and F1worst(c): means over the used tasks t != c. nil when c has no used pair (c
  /// true on every image or on none, or no task with enough positives on both sides).
  public let gap: [Double?]
  public let worst: [Double?]
  /// The medians of `gap` and `worst` over the attributes that have them: the paper's "all".
  public let allGap: Double?
  public let allWorst: Double?
  /// The mean over the tasks of F1 on all images (the usual accuracy summary).
  public let meanF1: Double

  /// The summary over the pairs `selection` keeps (default: those of these counts with at least
  /// `PairSelection.defaultMinimum` positives on each side).
  public init(_ counts: PairCounts, selection: PairSelection? = nil) {
    let selection = selection ?? PairSelection(counts)
    precondition(selection.attributeCount == counts.attributeCount, "a selection of other attributes")
    let attributeCount = counts.attributeCount
    let all = attributeCount * attributeCount
    let imageCount = counts.imageCount
    var f1Given = [Double?](repeating: nil, count: all)
    var f1GivenNot = f1Given
    var pairGap = f1Given
    var pairWorst = f1Given
    var gap = [Double?](repeating: nil, count: attributeCount)
    var worst = gap
    let conditionCounts = (0..<attributeCount).map { counts.imagesWhere($0) }
    for condition in 0..<attributeCount {
      let inside = conditionCounts[condition]
      guard inside > 0, inside < imageCount else { continue }
      var gapSum = 0.0
      var worstSum = 0.0
      var used = 0
      for task in 0..<attributeCount where task != condition {
        let index = condition * attributeCount + task
        let total = attributeCount * attributeCount + task
        let truePositives = counts.truePositives[index]
        let predicted = counts.predictedPositives[index]
        let positives = counts.positives[index]
        let given = f1(truePositives: truePositives, predicted: predicted, positives: positives)
        let givenNot = f1(
          truePositives: counts.truePositives[total] - truePositives, predicted: counts.predictedPositives[total] - predicted,
          positives: counts.positives[total] - positives)
        f1Given[index] = given
        f1GivenNot[index] = givenNot
        guard selection.included[index] else { continue }
        pairGap[index] = abs(given - givenNot)
        pairWorst[index] = min(given, givenNot)
        gapSum += abs(given - givenNot)
        worstSum += min(given, givenNot)
        used += 1
      }
      if used > 0 {
        gap[condition] = gapSum / Double(used)
        worst[condition] = worstSum / Double(used)
      }
    }
    self.attributeCount = attributeCount
    self.imageCount = imageCount
    self.selection = selection
    self.conditionCounts = conditionCounts
    rho = conditionCounts.map { imageCount == 0 ? 0 : Double(min($0, imageCount - $0)) / Double(imageCount) }
    f1GivenCondition = f1Given
    f1GivenNotCondition = f1GivenNot
    self.pairGap = pairGap
    self.pairWorst = pairWorst
    self.gap = gap
    self.worst = worst
    allGap = median(gap.compactMap { $0 })
    allWorst = median(worst.compactMap { $0 })
    let total = attributeCount * attributeCount
    meanF1 = attributeCount == 0 ? .nan : (0..<attributeCount).reduce(0.0) { sum, task in
      sum + f1(truePositives: counts.truePositives[total + task], predicted: counts.predictedPositives[total + task], positives: counts.positives[total + task])
    } / Double(attributeCount)
  }
}

/// The middle value, or the mean of the two middle values of an even count; nil when empty.
public func median(_ values: [Double]) -> Double? {
  guard !values.isEmpty else { return nil }
  let sorted = values.sorted()
  let middle = sorted.count / 2
  return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

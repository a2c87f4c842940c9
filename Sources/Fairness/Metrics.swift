// The paper's fairness metrics from pair counts: F1 per subgroup, F1 gap and worst-group F1 per
// pair and per attribute, their median over attributes ("all"), and rho.

/// A subgroup whose F1 fell back to the zero-division convention: no image of `task` is
/// positive there and none is predicted positive, so F1 = 0/0, counted as 0.
public struct ZeroDivision: Equatable, Sendable {
  public let task: Int
  public let condition: Int
  /// Whether the subgroup is "condition true" (false: "condition false").
  public let conditionValue: Bool

  public init(task: Int, condition: Int, conditionValue: Bool) {
    self.task = task
    self.condition = condition
    self.conditionValue = conditionValue
  }
}

/// Everything the paper reports for one model, for any number of attributes. Pair arrays are
/// indexed `[condition * attributeCount + task]`; they are nil on the diagonal and wherever a
/// subgroup has no image.
public struct FairnessSummary: Sendable {
  public let attributeCount: Int
  public let imageCount: Int
  /// N(c): test images where c is true.
  public let conditionCounts: [Int]
  /// rho(c) = min(N(c), N(-c)) / (N(c) + N(-c)).
  public let rho: [Double]
  /// F1(t|c) and F1(t|-c).
  public let f1GivenCondition: [Double?]
  public let f1GivenNotCondition: [Double?]
  /// |F1(t|c) - F1(t|-c)| and min(F1(t|c), F1(t|-c)).
  public let pairGap: [Double?]
  public let pairWorst: [Double?]
  /// F1gap(c) and F1worst(c): means over the tasks t != c. nil when c is true on every image or
  /// on none, so it has no two subgroups to compare.
  public let gap: [Double?]
  public let worst: [Double?]
  /// The medians of `gap` and `worst` over the attributes that have them: the paper's "all".
  public let allGap: Double?
  public let allWorst: Double?
  public let zeroDivisions: [ZeroDivision]

  public init(_ counts: PairCounts) {
    let attributeCount = counts.attributeCount
    let all = attributeCount * attributeCount
    let imageCount = counts.imageCount
    var f1Given = [Double?](repeating: nil, count: all)
    var f1GivenNot = f1Given
    var pairGap = f1Given
    var pairWorst = f1Given
    var gap = [Double?](repeating: nil, count: attributeCount)
    var worst = gap
    var zeroDivisions: [ZeroDivision] = []
    let conditionCounts = (0..<attributeCount).map { counts.imagesWhere($0) }
    for condition in 0..<attributeCount {
      let inside = conditionCounts[condition]
      guard inside > 0, inside < imageCount else { continue }
      var gapSum = 0.0
      var worstSum = 0.0
      for task in 0..<attributeCount where task != condition {
        let index = condition * attributeCount + task
        let total = attributeCount * attributeCount + task
        let truePositives = counts.truePositives[index]
        let predicted = counts.predictedPositives[index]
        let positives = counts.positives[index]
        let outsideTruePositives = counts.truePositives[total] - truePositives
        let outsidePredicted = counts.predictedPositives[total] - predicted
        let outsidePositives = counts.positives[total] - positives
        if predicted + positives == 0 {
          zeroDivisions.append(ZeroDivision(task: task, condition: condition, conditionValue: true))
        }
        if outsidePredicted + outsidePositives == 0 {
          zeroDivisions.append(ZeroDivision(task: task, condition: condition, conditionValue: false))
        }
        let given = f1(truePositives: truePositives, predicted: predicted, positives: positives)
        let givenNot = f1(truePositives: outsideTruePositives, predicted: outsidePredicted, positives: outsidePositives)
        f1Given[index] = given
        f1GivenNot[index] = givenNot
        pairGap[index] = abs(given - givenNot)
        pairWorst[index] = min(given, givenNot)
        gapSum += abs(given - givenNot)
        worstSum += min(given, givenNot)
      }
      if attributeCount > 1 {
        gap[condition] = gapSum / Double(attributeCount - 1)
        worst[condition] = worstSum / Double(attributeCount - 1)
      }
    }
    self.attributeCount = attributeCount
    self.imageCount = imageCount
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
    self.zeroDivisions = zeroDivisions
  }
}

/// The middle value, or the mean of the two middle values of an even count; nil when empty.
public func median(_ values: [Double]) -> Double? {
  guard !values.isEmpty else { return nil }
  let sorted = values.sorted()
  let middle = sorted.count / 2
  return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

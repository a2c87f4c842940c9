// Two models compared on the same bootstrap resamples, and what the paired intervals allow one
// to say: better, worse, equivalent within a stated margin, or inconclusive.

/// What a paired comparison of one statistic supports.
public enum Verdict: String, Sendable {
  /// The paired interval lies entirely on the favourable side of 0.
  case better
  /// The paired interval lies entirely on the unfavourable side of 0.
  case worse
  /// The paired 90% interval lies inside ±margin (two one-sided tests at 5% each, TOST).
  case equivalent
  /// Neither: the data do not tell.
  case inconclusive

  /// The verdict on a difference (first minus second) from its interval at the report's level
  /// (95%) and at 90%, for a statistic where larger is better (`higherIsBetter`) or worse (a gap).
  /// A difference that is both significant and inside the margin is called better or worse:
  /// `withinMargin` then says it is smaller than the margin.
  public static func decide(_ interval: Interval, equivalence: Interval, margin: Double, higherIsBetter: Bool) -> (verdict: Verdict, withinMargin: Bool) {
    let within = -margin < equivalence.low && equivalence.high < margin
    if interval.low > 0 || interval.high < 0 {
      let firstLarger = interval.low > 0
      return (firstLarger == higherIsBetter ? .better : .worse, within)
    }
    return (within ? .equivalent : .inconclusive, within)
  }
}

/// Two models on the same test images, evaluated on the same resamples: the bias-corrected
/// differences (first minus second) of gap, worst and "all", and of mean F1, with their intervals
/// at the options' level and at the equivalence level.
public struct PairedComparison: Sendable {
  public let intervals: BootstrapIntervals
  public let equivalence: BootstrapIntervals
  public let meanF1: Interval?
  public let meanF1Equivalence: Interval?

  /// Both evaluations must hold the same test images (as two runs on one dataset do).
  public init(_ first: ModelEvaluation, _ second: ModelEvaluation, options: BootstrapOptions) {
    let selection = first.summary.selection
    let draws = Bootstrap.resample([first.outcomes, second.outcomes], count: options.resamples, seed: options.seed, selection: selection)
    let a = Resampled(estimate: ResampleStatistic(first.summary), resamples: draws[0], selection: selection)
    let b = Resampled(estimate: ResampleStatistic(second.summary), resamples: draws[1], selection: selection)
    intervals = BootstrapIntervals(difference: a, b, level: options.level, method: options.method)
    equivalence = BootstrapIntervals(difference: a, b, level: BootstrapOptions.equivalenceLevel, method: options.method)
    meanF1 = intervals.meanF1
    meanF1Equivalence = equivalence.meanF1
  }
}

// Asynchronous successive halving (ASHA) for the sweeps: at each rung (epochs minEpochs,
// minEpochs*eta, minEpochs*eta^2, ...) a trial's validation metric is compared with every
// metric recorded at that rung for its strategy so far; it goes on only if it is in the top
// 1/eta of them, so the budget goes to promising trials without waiting for a full bracket.
import Fairness
import Foundation

public struct Asha: Equatable, Sendable {
  /// The reduction factor: the share of trials that continue past a rung is 1/eta.
  public var eta: Int
  /// The first rung, in epochs.
  public var minEpochs: Int

  public init(eta: Int = 3, minEpochs: Int = 1) {
    self.eta = eta
    self.minEpochs = minEpochs
  }

  /// Whether the end of `epoch` is a rung for a trial of `epochs` epochs (its last epoch is not:
  /// the trial ends there anyway).
  public func isRung(epoch: Int, of epochs: Int) -> Bool {
    guard epoch < epochs, epoch >= minEpochs, eta > 1 else { return false }
    var rung = minEpochs
    while rung < epoch { rung *= eta }
    return rung == epoch
  }

  /// The cutoff at a rung: the (1 - 1/eta) quantile of the recorded metrics (linear
  /// interpolation between order statistics). A trial continues when its metric reaches it.
  public func cutoff(_ recorded: [Double]) -> Double? {
    let values = recorded.filter(\.isFinite).sorted()
    guard !values.isEmpty else { return nil }
    return interpolatedQuantile(sorted: values, 1 - 1 / Double(eta))
  }

  /// The decision for a trial whose metric at a rung is `metric`, given the metrics of the
  /// other trials there (the trial's own is counted with them).
  public func shouldContinue(metric: Double, others: [Double]) -> (go: Bool, cutoff: Double) {
    guard metric.isFinite else { return (false, .nan) }
    let cut = cutoff(others + [metric]) ?? metric
    return (metric >= cut, cut)
  }
}

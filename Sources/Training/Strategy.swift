// The paper's fine-tuning strategies (and the supervised baseline) as filters over the
// parameter registry plus a BatchNorm mode.
import Experiment
import NN

extension Strategy {
  /// Whether the strategy trains `parameter`.
  public func trains(_ parameter: Parameter) -> Bool {
    switch self {
    case .frozen, .bnRecal, .bnStats:
      return parameter.group == .head
    case .bnStatsAffine:
      return parameter.group == .head || parameter.kind == .normalization
    case .bnStatsSkip:
      return parameter.group == .head || parameter.kind == .normalization || parameter.group == .shortcut
    case .full, .supervised:
      return true
    }
  }

  /// Sets what trains and how BatchNorm behaves; backward then skips everything below the
  /// lowest trainable parameter, and no weight gradient is computed for a frozen tensor.
  public func apply(to model: ResNet) {
    for p in model.registry.parameters { p.requiresGradient = trains(p) }
    model.setBatchNormTraining(trainsBatchNorm)
    model.configureGradients()
  }

  /// Parameters the optimizer updates, and running-statistic values (means and variances)
  /// that change, for the paper's Figure 1.
  public func updatedCounts(_ model: ResNet) -> (parameters: Int, buffers: Int) {
    let parameters = model.registry.parameters.filter(trains).reduce(0) { $0 + $1.count }
    let buffers = updatesBatchNormStatistics
      ? model.registry.buffers.filter { !$0.name.hasSuffix("num_batches_tracked") }.reduce(0) { $0 + $1.count } : 0
    return (parameters, buffers)
  }
}

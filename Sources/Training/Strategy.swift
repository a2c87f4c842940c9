// The paper's fine-tuning strategies (and the supervised baseline) as filters over the
// parameter registry plus a BatchNorm mode.
import NN

public enum Strategy: String, CaseIterable, Codable, Sendable {
  /// Backbone weights and running statistics fixed (BatchNorm in eval mode); only the head trains.
  case frozen
  /// Backbone weights fixed; BatchNorm uses batch statistics and updates its running statistics.
  case bnStats = "bn-stats"
  /// As bn-stats, and every BatchNorm weight and bias trains.
  case bnStatsAffine = "bn-stats-affine"
  /// As bn-stats-affine, and the downsample shortcuts (1x1 convolution and BatchNorm) train.
  case bnStatsSkip = "bn-stats-skip"
  /// Everything trains.
  case full
  /// Everything trains, from a random initialisation (no pretrained backbone).
  case supervised

  /// The paper's names, for tables.
  public var title: String {
    switch self {
    case .frozen: return "Frozen"
    case .bnStats: return "BN Stats"
    case .bnStatsAffine: return "BN Stats+Affine"
    case .bnStatsSkip: return "BN Stats+Skip"
    case .full: return "Full FT"
    case .supervised: return "Supervised"
    }
  }

  /// Whether the strategy trains `parameter`.
  public func trains(_ parameter: Parameter) -> Bool {
    switch self {
    case .frozen, .bnStats:
      return parameter.group == .head
    case .bnStatsAffine:
      return parameter.group == .head || parameter.kind == .normalization
    case .bnStatsSkip:
      return parameter.group == .head || parameter.kind == .normalization || parameter.group == .shortcut
    case .full, .supervised:
      return true
    }
  }

  /// BatchNorm in training mode (batch statistics, running statistics updated).
  public var updatesBatchNormStatistics: Bool { self != .frozen }

  /// Sets what trains and how BatchNorm behaves; backward then skips everything below the
  /// lowest trainable parameter, and no weight gradient is computed for a frozen tensor.
  public func apply(to model: ResNet) {
    for p in model.registry.parameters { p.requiresGradient = trains(p) }
    model.setBatchNormTraining(updatesBatchNormStatistics)
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

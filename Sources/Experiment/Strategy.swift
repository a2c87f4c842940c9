// The vocabulary that training and reporting share: the paper's fine-tuning strategies and the
// supervised baseline, by the names the command line, run.json and the tables use.

/// The fine-tuning strategies of the paper and the supervised baseline, in report order (from
/// fewest to most updated values, then supervised).
public enum Strategy: String, CaseIterable, Codable, Sendable {
  /// Backbone weights and running statistics fixed (BatchNorm in eval mode); only the head trains.
  case frozen
  /// Backbone weights fixed; BatchNorm's running statistics are set once, before the head trains,
  /// to the exact population statistics of the fine-tuning train images (one forward pass), then
  /// fixed (eval mode) as frozen's. Not in the paper.
  case bnRecal = "bn-recal"
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
    case .bnRecal: return "BN Recal"
    case .bnStats: return "BN Stats"
    case .bnStatsAffine: return "BN Stats+Affine"
    case .bnStatsSkip: return "BN Stats+Skip"
    case .full: return "Full FT"
    case .supervised: return "Supervised"
    }
  }

  /// BatchNorm's running statistics change (the buffers Figure 1 counts).
  public var updatesBatchNormStatistics: Bool { self != .frozen }

  /// BatchNorm in training mode while the model trains (batch statistics, running statistics
  /// updated); frozen and bn-recal normalise with fixed running statistics.
  public var trainsBatchNorm: Bool { self != .frozen && self != .bnRecal }

  /// Whether the paper has the strategy (bn-recal is fairtune's own).
  public var isInPaper: Bool { self != .bnRecal }

  /// The names, comma-separated, for messages.
  public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

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

  // What each strategy needs and does, each an exhaustive switch: a new case makes the compiler
  // ask every one of these questions (and `trains(_:)`, on the parameter registry, in Training).

  /// Starts from a pretrained backbone (`--from`); supervised starts from a random one.
  public var startsFromPretrainedBackbone: Bool {
    switch self {
    case .frozen, .bnRecal, .bnStats, .bnStatsAffine, .bnStatsSkip, .full: return true
    case .supervised: return false
    }
  }

  /// The backbone computes a fixed function while the head trains (weights fixed, BatchNorm on
  /// fixed statistics), so on plain images every image's features can be computed once and
  /// training and evaluation run only the head.
  public var hasFixedBackbone: Bool {
    switch self {
    case .frozen, .bnRecal: return true
    case .bnStats, .bnStatsAffine, .bnStatsSkip, .full, .supervised: return false
    }
  }

  /// A pass over the train images before the head trains.
  public var setupPass: SetupPass? {
    switch self {
    case .bnRecal: return .recalibration
    case .frozen, .bnStats, .bnStatsAffine, .bnStatsSkip, .full, .supervised: return nil
    }
  }

  /// BatchNorm's running statistics change (the buffers Figure 1 counts).
  public var updatesBatchNormStatistics: Bool {
    switch self {
    case .frozen: return false
    case .bnRecal, .bnStats, .bnStatsAffine, .bnStatsSkip, .full, .supervised: return true
    }
  }

  /// BatchNorm in training mode while the model trains (batch statistics, running statistics
  /// updated); frozen and bn-recal normalise with fixed running statistics.
  public var trainsBatchNorm: Bool { !hasFixedBackbone }

  /// Whether the paper has the strategy (bn-recal is fairtune's own).
  public var isInPaper: Bool {
    switch self {
    case .bnRecal: return false
    case .frozen, .bnStats, .bnStatsAffine, .bnStatsSkip, .full, .supervised: return true
    }
  }

  /// The names, comma-separated, for messages.
  public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// A pass over the fine-tuning train images that a strategy makes before its head trains.
public enum SetupPass: Sendable {
  /// bn-recal's: every BatchNorm's running statistics set to the train images' population
  /// statistics (optionally balanced on an attribute, `--bn-balance`).
  case recalibration
}

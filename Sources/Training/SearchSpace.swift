// The random search space of the sweeps and the seeded draw of trials (the same list whatever
// the number of groups that run them).
import Foundation
import NN
import Support
import Tensors

#if canImport(Glibc)
  import Glibc
#endif

public enum SearchSpaceError: Error, CustomStringConvertible {
  case invalid(source: String, reason: String)

  public var description: String {
    switch self {
    case .invalid(let source, let reason):
      return "\(source): \(reason). See `fairtune sweep --help` for the format."
    }
  }
}

/// What a trial may be drawn from. The default follows the paper's search: optimizers SGD,
/// LARS, Adam and AdamW; log-uniform learning rates (per optimizer); cosine-with-warmup or
/// one-cycle schedules; log-uniform weight decay, zero a quarter of the time; epochs up to
/// --max-epochs; warmup up to a fifth of the epochs. The learning-rate ranges are set so that
/// every draw trains a fresh head within one epoch (measured on the built-in faces, in
/// docs/search.md): the loss is a mean over 40 attributes, so SGD and LARS (whose head is
/// not trust-ratio adapted) need rates of 0.3 and up, and Adam gives the head 30 times its rate.
///
/// JSON form (`--space FILE`), every key optional:
///
///     {"optimizers": {"sgd": [0.3, 10.0], "lars": [0.3, 5.0], "adam": [1e-4, 3e-3], "adamw": [1e-4, 3e-3]},
///      "schedules": ["cosine", "onecycle"],
///      "weight_decay": [1e-6, 1e-3], "zero_weight_decay": 0.25,
///      "min_epochs": 1, "warmup_fraction": 0.2}
public struct SearchSpace: Equatable, Sendable {
  /// Optimizer -> learning-rate range (log-uniform).
  public var optimizers: [String: ClosedRange<Double>]
  public var schedules: [ScheduleKind]
  public var weightDecay: ClosedRange<Double>
  public var zeroWeightDecay: Double
  public var minimumEpochs: Int
  public var warmupFraction: Double

  public static let standard = SearchSpace(
    optimizers: ["sgd": 0.3...10.0, "lars": 0.3...5.0, "adam": 1e-4...3e-3, "adamw": 1e-4...3e-3],
    schedules: [.cosine, .onecycle], weightDecay: 1e-6...1e-3, zeroWeightDecay: 0.25, minimumEpochs: 1,
    warmupFraction: 0.2)

  public init(
    optimizers: [String: ClosedRange<Double>], schedules: [ScheduleKind], weightDecay: ClosedRange<Double>,
    zeroWeightDecay: Double, minimumEpochs: Int, warmupFraction: Double
  ) {
    self.optimizers = optimizers
    self.schedules = schedules
    self.weightDecay = weightDecay
    self.zeroWeightDecay = zeroWeightDecay
    self.minimumEpochs = minimumEpochs
    self.warmupFraction = warmupFraction
  }

  /// Reads a `--space` file over the standard space; every value is checked.
  public init(json data: Data, source: String) throws {
    var space = SearchSpace.standard
    guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw SearchSpaceError.invalid(source: source, reason: "not a JSON object")
    }
    func range(_ value: Any?, _ key: String) throws -> ClosedRange<Double> {
      guard let pair = value as? [NSNumber], pair.count == 2 else {
        throw SearchSpaceError.invalid(source: source, reason: "'\(key)' must be a pair [low, high]")
      }
      let (low, high) = (pair[0].doubleValue, pair[1].doubleValue)
      guard low.isFinite, high.isFinite, low > 0, low <= high else {
        throw SearchSpaceError.invalid(source: source, reason: "'\(key)' must be finite with 0 < low <= high (got [\(low), \(high)])")
      }
      return low...high
    }
    let known: Set<String> = ["optimizers", "schedules", "weight_decay", "zero_weight_decay", "min_epochs", "warmup_fraction"]
    if let unknown = object.keys.first(where: { !known.contains($0) }) {
      throw SearchSpaceError.invalid(source: source, reason: "unknown key '\(unknown)'")
    }
    if let optimizers = object["optimizers"] {
      guard let table = optimizers as? [String: Any], !table.isEmpty else {
        throw SearchSpaceError.invalid(source: source, reason: "'optimizers' must map optimizer names to [low, high] learning rates")
      }
      space.optimizers = [:]
      for (name, value) in table {
        guard OptimizerKind(rawValue: name) != nil else {
          throw SearchSpaceError.invalid(source: source, reason: "unknown optimizer '\(name)' (use sgd, lars, adam, adamw)")
        }
        space.optimizers[name] = try range(value, "optimizers.\(name)")
      }
    }
    if let schedules = object["schedules"] {
      guard let names = schedules as? [String], !names.isEmpty else {
        throw SearchSpaceError.invalid(source: source, reason: "'schedules' must be a non-empty list of names")
      }
      space.schedules = try names.map {
        guard let kind = ScheduleKind(rawValue: $0) else {
          throw SearchSpaceError.invalid(source: source, reason: "unknown schedule '\($0)' (use \(ScheduleKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return kind
      }
    }
    if let wd = object["weight_decay"] { space.weightDecay = try range(wd, "weight_decay") }
    if let z = object["zero_weight_decay"] {
      guard let p = (z as? NSNumber)?.doubleValue, (0...1).contains(p) else {
        throw SearchSpaceError.invalid(source: source, reason: "'zero_weight_decay' must be a probability in [0, 1]")
      }
      space.zeroWeightDecay = p
    }
    if let e = object["min_epochs"] {
      guard let n = e as? Int, n >= 1 else {
        throw SearchSpaceError.invalid(source: source, reason: "'min_epochs' must be a positive integer")
      }
      space.minimumEpochs = n
    }
    if let w = object["warmup_fraction"] {
      guard let f = (w as? NSNumber)?.doubleValue, (0..<1).contains(f) else {
        throw SearchSpaceError.invalid(source: source, reason: "'warmup_fraction' must be in [0, 1)")
      }
      space.warmupFraction = f
    }
    self = space
  }

  /// Trial `index` of `strategy`: a pure function of (seed, strategy, index), so every group
  /// count and every resume draws the same list.
  public func draw(seed: UInt64, strategy: String, index: Int, maxEpochs: Int) -> TrialSettings {
    var rng = SplitMix64(seed: seed ^ (digestOf(strategy) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
    func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
    func logUniform(_ r: ClosedRange<Double>) -> Double { exp(log(r.lowerBound) + uniform() * (log(r.upperBound) - log(r.lowerBound))) }
    let names = optimizers.keys.sorted()
    let optimizer = names[Int(uniform() * Double(names.count)) % names.count]
    let learningRate = logUniform(optimizers[optimizer]!)
    let schedule = schedules[Int(uniform() * Double(schedules.count)) % schedules.count]
    let weightDecay = uniform() < zeroWeightDecay ? 0 : logUniform(weightDecay)
    let low = min(minimumEpochs, maxEpochs)
    let epochs = low + Int(uniform() * Double(maxEpochs - low + 1)) % (maxEpochs - low + 1)
    let warmupLimit = Int(Double(epochs) * warmupFraction)
    let warmup = schedule == .onecycle ? 0 : Int(uniform() * Double(warmupLimit + 1)) % (warmupLimit + 1)
    return TrialSettings(
      strategy: strategy, optimizer: optimizer, learningRate: learningRate, schedule: schedule.rawValue,
      weightDecay: weightDecay, epochs: epochs, warmupEpochs: warmup, seed: rng.next() >> 33)
  }

  private func digestOf(_ text: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
  }
}

/// The hyper-parameters of one trial.
public struct TrialSettings: Equatable, Codable, Sendable {
  public var strategy: String
  public var optimizer: String
  public var learningRate: Double
  public var schedule: String
  public var weightDecay: Double
  public var epochs: Int
  public var warmupEpochs: Int
  public var seed: UInt64

  enum CodingKeys: String, CodingKey {
    case strategy, optimizer, schedule, epochs, seed
    case learningRate = "learning_rate"
    case weightDecay = "weight_decay"
    case warmupEpochs = "warmup_epochs"
  }
}

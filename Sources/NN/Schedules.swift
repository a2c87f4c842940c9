// Learning-rate schedules: constant, step, cosine and one-cycle, each with an optional linear warmup.
#if canImport(Glibc)
  import Glibc
#endif

public enum ScheduleKind: String, CaseIterable, Codable, Sendable {
  case constant, step, cosine
  /// Smith and Topin's one-cycle, as torch.optim.lr_scheduler.OneCycleLR (cosine annealing):
  /// up from base/25 to base over the first 30% of the steps, then down to base/(25 * 1e4).
  case onecycle
}

public struct Schedule: Equatable, Codable, Sendable {
  public var kind: ScheduleKind
  public var baseLearningRate: Float
  public var totalSteps: Int
  /// Linear warmup from 0 (constant, step, cosine; one-cycle has its own ramp).
  public var warmupSteps: Int
  /// `step`: multiply by `gamma` at each of these steps.
  public var milestones: [Int]
  public var gamma: Float

  public init(
    kind: ScheduleKind, baseLearningRate: Float, totalSteps: Int, warmupSteps: Int = 0,
    milestones: [Int] = [], gamma: Float = 0.1
  ) {
    self.kind = kind
    self.baseLearningRate = baseLearningRate
    self.totalSteps = max(totalSteps, 1)
    self.warmupSteps = max(warmupSteps, 0)
    self.milestones = milestones
    self.gamma = gamma
  }

  /// The learning rate for 0-based `step`.
  public func learningRate(step: Int) -> Float {
    let base = Double(baseLearningRate)
    if kind == .onecycle {
      let peak = base
      let initial = peak / 25
      let final = initial / 1e4
      let rampEnd = 0.3 * Double(totalSteps) - 1
      let s = Double(step)
      if s <= rampEnd {
        return Float(annealCosine(from: initial, to: peak, fraction: rampEnd > 0 ? s / rampEnd : 1))
      }
      let downSteps = Double(totalSteps) - 1 - rampEnd
      return Float(annealCosine(from: peak, to: final, fraction: downSteps > 0 ? min((s - rampEnd) / downSteps, 1) : 1))
    }
    if step < warmupSteps {
      return Float(base * Double(step + 1) / Double(warmupSteps))
    }
    switch kind {
    case .constant, .onecycle:
      return Float(base)
    case .step:
      let passed = milestones.filter { step >= $0 }.count
      return Float(base * pow(Double(gamma), Double(passed)))
    case .cosine:
      let span = Double(max(totalSteps - warmupSteps, 1))
      let progress = min(Double(step - warmupSteps) / span, 1)
      return Float(base * 0.5 * (1 + cos(Double.pi * progress)))
    }
  }

  private func annealCosine(from start: Double, to end: Double, fraction: Double) -> Double {
    end + (start - end) / 2 * (1 + cos(Double.pi * fraction))
  }
}

// Optimizers (SGD with momentum/Nesterov, Adam, AdamW, LARS) with torch.optim's update rules;
// each acts only on the parameters its filter selected, which is what a fine-tuning strategy is.
import Tensors

#if canImport(Glibc)
  import Glibc
#endif

/// Updates the parameters it was given from their gradients. `learningRate` is set by the
/// schedule before each step.
public protocol Optimizer: AnyObject {
  var learningRate: Float { get set }
  var parameters: [Parameter] { get }
  /// One update of every parameter. With `zeroingGradients`, each gradient element is set to 0
  /// as soon as it is read: the gradients are left zero for the next step, without a pass of
  /// their own over the buffer (see `ParameterRegistry.step(_:)`).
  func step(zeroingGradients: Bool)
  /// Per-parameter state (momentum buffers, moments) and the step count, for checkpoints.
  var state: [Tensor] { get }
  var stepCount: Int { get set }
}

extension Optimizer {
  /// One update, the gradients left as they are.
  public func step() { step(zeroingGradients: false) }
}

public enum OptimizerKind: String, CaseIterable, Sendable {
  case sgd, adam, adamw, lars
}

/// The hyper-parameters of every optimizer kind.
public struct OptimizerSettings: Equatable, Codable, Sendable {
  public var kind: String
  public var learningRate: Float
  public var momentum: Float
  public var nesterov: Bool
  public var weightDecay: Float
  public var beta1: Float
  public var beta2: Float
  public var epsilon: Float
  /// LARS's trust coefficient (SimCLR uses 0.001).
  public var trustCoefficient: Float
  /// Adam and AdamW: the classifier head's learning rate is this times the others' (see
  /// `Adam.classifierScale`).
  public var classifierScale: Float

  public init(
    kind: OptimizerKind, learningRate: Float, momentum: Float = 0.9, nesterov: Bool = false,
    weightDecay: Float = 0, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
    trustCoefficient: Float = 0.001, classifierScale: Float = 1
  ) {
    self.kind = kind.rawValue
    self.learningRate = learningRate
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.trustCoefficient = trustCoefficient
    self.classifierScale = classifierScale
  }

  /// Builds the optimizer over `parameters`.
  public func make(_ parameters: [Parameter]) -> Optimizer {
    switch OptimizerKind(rawValue: kind) ?? .sgd {
    case .sgd:
      return SGD(parameters, learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
    case .adam, .adamw:
      return Adam(parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
        weightDecay: weightDecay, decoupled: kind == OptimizerKind.adamw.rawValue, classifierScale: classifierScale)
    case .lars:
      return LARS(parameters, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay,
        trustCoefficient: trustCoefficient)
    }
  }
}

extension Parameter {
  /// A parameter of the classifier head (torchvision's `fc`), which some optimizers treat apart.
  public var isClassifier: Bool { group == .head && name.hasPrefix("fc.") }
}

/// One state buffer per parameter (allocated with the optimizer, so steps allocate nothing).
private func stateBuffers(_ parameters: [Parameter], copies: Int) -> [Tensor] {
  (0..<copies).flatMap { _ in parameters.map { Tensor(shape: [$0.count]) } }
}

/// torch.optim.SGD: g += wd p; v = mu v + g (v = g on the first step); p -= lr (g + mu v) with
/// Nesterov, p -= lr v without.
public final class SGD: Optimizer {
  public var learningRate: Float
  public let momentum: Float
  public let nesterov: Bool
  public let weightDecay: Float
  public let parameters: [Parameter]
  public let state: [Tensor]
  public var stepCount = 0

  public init(_ parameters: [Parameter], learningRate: Float, momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 0) {
    self.parameters = parameters
    self.learningRate = learningRate
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
    state = stateBuffers(parameters, copies: momentum == 0 ? 0 : 1)
  }

  /// Every parameter of the registry that requires a gradient.
  public convenience init(_ registry: ParameterRegistry, learningRate: Float, momentum: Float = 0.9) {
    self.init(registry.parameters { $0.requiresGradient }, learningRate: learningRate, momentum: momentum)
  }

  public func step(zeroingGradients zeroing: Bool) {
    let (lr, mu, wd, first, nesterov) = (learningRate, momentum, weightDecay, stepCount == 0, nesterov)
    for (index, p) in parameters.enumerated() {
      let value = p.value!
      let grad = p.gradient!
      if mu == 0 {
        Parallel.forEach(p.count, grain: 1 << 14) { range in
          for i in range {
            value[i] -= lr * (grad[i] + wd * value[i])
            if zeroing { grad[i] = 0 }
          }
        }
        continue
      }
      let velocity = state[index].data
      Parallel.forEach(p.count, grain: 1 << 14) { range in
        for i in range {
          let g = grad[i] + wd * value[i]
          if zeroing { grad[i] = 0 }
          let v = first ? g : mu * velocity[i] + g
          velocity[i] = v
          value[i] -= lr * (nesterov ? g + mu * v : v)
        }
      }
    }
    stepCount += 1
  }
}

/// torch.optim.Adam (L2 weight decay added to the gradient) and AdamW (decoupled: p *= 1 - lr wd).
public final class Adam: Optimizer {
  public var learningRate: Float
  public let beta1: Float
  public let beta2: Float
  public let epsilon: Float
  public let weightDecay: Float
  public let decoupled: Bool
  /// The classifier head's learning rate is `classifierScale` times the others'. Adam's step is
  /// about the learning rate whatever the gradient's scale, so one rate cannot suit both a fresh
  /// linear head (whose weights must move by tenths within an epoch) and a pretrained backbone
  /// (which a rate that large would wreck).
  public let classifierScale: Float
  public let parameters: [Parameter]
  /// First moments, then second moments, one tensor per parameter each.
  public let state: [Tensor]
  public var stepCount = 0

  public init(
    _ parameters: [Parameter], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
    epsilon: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false, classifierScale: Float = 1
  ) {
    self.classifierScale = classifierScale
    self.parameters = parameters
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
    self.decoupled = decoupled
    state = stateBuffers(parameters, copies: 2)
  }

  public func step(zeroingGradients zeroing: Bool) {
    stepCount += 1
    let t = Float(stepCount)
    let correction1 = 1 - powf(beta1, t)
    let correction2 = 1 - powf(beta2, t)
    let root2 = correction2.squareRoot()
    let (b1, b2, eps, wd, decoupled) = (beta1, beta2, epsilon, weightDecay, decoupled)
    for (index, p) in parameters.enumerated() {
      let lr = learningRate * (p.isClassifier ? classifierScale : 1)
      let stepSize = lr / correction1
      let value = p.value!
      let grad = p.gradient!
      let m = state[index].data
      let v = state[parameters.count + index].data
      Parallel.forEach(p.count, grain: 1 << 14) { range in
        for i in range {
          var g = grad[i]
          if zeroing { grad[i] = 0 }
          if decoupled { value[i] *= 1 - lr * wd } else { g += wd * value[i] }
          m[i] = b1 * m[i] + (1 - b1) * g
          v[i] = b2 * v[i] + (1 - b2) * g * g
          value[i] -= stepSize * m[i] / (v[i].squareRoot() / root2 + eps)
        }
      }
    }
  }
}

/// LARS as in SimCLR's reference code: for a weight tensor, g += wd w, then the layer's learning
/// rate is lr * eta * ||w|| / ||g|| (1 when either norm is 0); v = mu v + lr' g; w -= v.
/// BatchNorm and bias parameters, and the classifier head, are excluded from both weight decay
/// and adaptation.
public final class LARS: Optimizer {
  public var learningRate: Float
  public let momentum: Float
  public let weightDecay: Float
  public let trustCoefficient: Float
  public let parameters: [Parameter]
  public let state: [Tensor]
  public var stepCount = 0

  public init(_ parameters: [Parameter], learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 1e-6, trustCoefficient: Float = 0.001) {
    self.parameters = parameters
    self.learningRate = learningRate
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.trustCoefficient = trustCoefficient
    state = stateBuffers(parameters, copies: 1)
  }

  /// BatchNorm parameters and biases are neither decayed nor adapted; nor is the classifier
  /// (torchvision's `fc`), as SimCLR's reference code excludes its supervised head: a freshly
  /// initialised head has a small weight norm against a large gradient, so a trust ratio of
  /// 0.001 would leave it nearly untrained. SimCLR's projection head stays adapted.
  public static func isExcluded(_ p: Parameter) -> Bool {
    p.kind == .normalization || p.name.hasSuffix(".bias") || p.isClassifier
  }

  public func step(zeroingGradients zeroing: Bool) {
    for (index, p) in parameters.enumerated() {
      let value = p.value!
      let grad = p.gradient!
      let velocity = state[index].data
      let adapted = !Self.isExcluded(p)
      let wd = adapted ? weightDecay : 0
      var rate = learningRate
      if adapted {
        var weightNorm = 0.0
        var gradientNorm = 0.0
        for i in 0..<p.count {
          let g = Double(grad[i]) + Double(wd) * Double(value[i])
          weightNorm += Double(value[i]) * Double(value[i])
          gradientNorm += g * g
        }
        weightNorm = weightNorm.squareRoot()
        gradientNorm = gradientNorm.squareRoot()
        if weightNorm > 0 && gradientNorm > 0 {
          rate *= Float(Double(trustCoefficient) * weightNorm / gradientNorm)
        }
      }
      let mu = momentum
      Parallel.forEach(p.count, grain: 1 << 14) { range in
        for i in range {
          let g = grad[i] + wd * value[i]
          if zeroing { grad[i] = 0 }
          let v = mu * velocity[i] + rate * g
          velocity[i] = v
          value[i] -= v
        }
      }
    }
    stepCount += 1
  }
}

// SGD with momentum and weight decay, torch.optim.SGD's update, over the registry's parameters.
import Tensors

public final class SGD {
  public var learningRate: Float
  public var momentum: Float
  public var weightDecay: Float
  private var velocity: Tensor?
  private var started = false

  public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0) {
    self.learningRate = learningRate
    self.momentum = momentum
    self.weightDecay = weightDecay
  }

  /// v = mu v + (g + wd p) (v = g + wd p on the first step); p -= lr v. Only parameters that
  /// require gradients move.
  public func step(_ registry: ParameterRegistry) {
    if velocity == nil { velocity = Tensor(shape: [registry.parameterCount]) }
    let v = velocity!.data
    let (lr, mu, wd, first) = (learningRate, momentum, weightDecay, !started)
    for p in registry.parameters where p.requiresGradient {
      let value = p.value!
      let grad = p.gradient!
      let vel = v + p.offset
      Parallel.forEach(p.count, grain: 1 << 14) { range in
        for i in range {
          let g = grad[i] + wd * value[i]
          let m = first ? g : mu * vel[i] + g
          vel[i] = m
          value[i] -= lr * m
        }
      }
    }
    started = true
  }
}

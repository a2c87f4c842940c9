// The residual join: out = ReLU(main + shortcut), and its backward, which feeds both branches.
import Tensors

public final class ResidualAddReLU {
  private var output = Workspace()
  /// Where the masked gradient goes (see `ResNet`'s sharing of these).
  public var gradientBuffer = SharedWorkspace()
  private var shape: FeatureMap?

  public init() {}

  public func forward(_ main: FeatureMap, _ shortcut: FeatureMap) -> FeatureMap {
    precondition(main.count == shortcut.count, "residual shapes differ")
    let y = output.pointer(count: main.count)
    let a = main.data
    let b = shortcut.data
    Parallel.forEach(main.count, grain: 1 << 14) { range in
      for i in range { y[i] = max(a[i] + b[i], 0) }
    }
    let out = main.with(data: y)
    shape = out
    return out
  }

  /// Takes `output` as this join's result when a BatchNorm computed it
  /// (`BatchNorm2d.forward(_:joining:)`), so that backward masks by it.
  public func adopt(_ output: FeatureMap) { shape = output }

  /// Where a BatchNorm of one branch stores the masked gradient while it reads dy
  /// (`BatchNorm2d.backward(_:join:)`), instead of a pass of its own here.
  public func maskedGradient() -> JoinGradient {
    guard let out = shape else { preconditionFailure("backward before forward") }
    return JoinGradient(output: UnsafePointer(out.data), masked: gradientBuffer.pointer(count: out.count))
  }

  /// The gradient at the sum (dy masked by the ReLU): the same tensor flows into both branches.
  public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
    guard let out = shape else { preconditionFailure("backward before forward") }
    let d = gradientBuffer.pointer(count: out.count)
    let y = out.data
    Parallel.forEach(out.count, grain: 1 << 14) { range in
      for i in range { d[i] = y[i] > 0 ? dy[i] : 0 }
    }
    return d
  }
}

// Linear (fully connected, with bias) as a forward/backward pair.
import Support
import Tensors

public final class Linear {
  public let inputFeatures: Int
  public let outputFeatures: Int
  /// [outputFeatures, inputFeatures], as torch.
  public let weight: Parameter
  public let bias: Parameter?
  public var computesInputGradient = true

  private var input: UnsafePointer<Float>?
  private var batch = 0
  private var output = Workspace()
  private var inputGradient = Workspace()

  public init(
    _ registry: ParameterRegistry, name: String, inputFeatures: Int, outputFeatures: Int,
    bias: Bool = true, group: ParameterGroup = .head
  ) {
    self.inputFeatures = inputFeatures
    self.outputFeatures = outputFeatures
    weight = registry.parameter(
      "\(name).weight", shape: [outputFeatures, inputFeatures], kind: .linear, group: group)
    self.bias = bias
      ? registry.parameter("\(name).bias", shape: [outputFeatures], kind: .linear, group: group) : nil
  }

  /// torch.nn.Linear's default: uniform(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
  public func initialize(_ rng: inout SplitMix64) {
    let bound = 1 / Float(inputFeatures).squareRoot()
    for i in 0..<weight.count { weight.value[i] = (rng.uniform() * 2 - 1) * bound }
    if let bias {
      for i in 0..<bias.count { bias.value[i] = (rng.uniform() * 2 - 1) * bound }
    }
  }

  /// Multiply-adds x2 of the last forward pass.
  public var lastForwardFLOPs: Double { 2 * Double(batch * inputFeatures * outputFeatures) }

  // x: [N, in] -> y: [N, out]
  public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafeMutablePointer<Float> {
    input = x
    self.batch = batch
    let y = output.pointer(count: batch * outputFeatures)
    if let bias {
      for n in 0..<batch { (y + n * outputFeatures).update(from: bias.value, count: outputFeatures) }
    }
    BLAS.sgemm(
      transposeB: true, m: batch, n: outputFeatures, k: inputFeatures,
      a: x, lda: inputFeatures, b: weight.value, ldb: inputFeatures,
      beta: bias == nil ? 0 : 1, c: y, ldc: outputFeatures)
    return y
  }

  public func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float>? {
    guard let x = input else { preconditionFailure("backward before forward") }
    if weight.requiresGradient {
      BLAS.sgemm(
        transposeA: true, m: outputFeatures, n: inputFeatures, k: batch,
        a: dy, lda: outputFeatures, b: x, ldb: inputFeatures, beta: 1, c: weight.gradient, ldc: inputFeatures)
    }
    if let bias, bias.requiresGradient {
      for n in 0..<batch {
        for o in 0..<outputFeatures { bias.gradient[o] += dy[n * outputFeatures + o] }
      }
    }
    guard computesInputGradient else { return nil }
    let dx = inputGradient.pointer(count: batch * inputFeatures)
    BLAS.sgemm(
      m: batch, n: inputFeatures, k: outputFeatures,
      a: dy, lda: outputFeatures, b: weight.value, ldb: inputFeatures, c: dx, ldc: inputFeatures)
    return dx
  }
}

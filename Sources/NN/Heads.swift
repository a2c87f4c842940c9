// SimCLR's projection head: Linear -> BatchNorm -> ReLU -> Linear (torch.nn.Sequential indices
// 0, 1, 3 in the parameter names).
import Support
import Tensors

public struct ProjectionSize: Equatable, Codable, Sendable {
  public var hidden: Int
  public var output: Int

  public init(hidden: Int, output: Int = 128) {
    self.hidden = hidden
    self.output = output
  }
}

public final class ProjectionHead {
  public let first: Linear
  public let norm: BatchNorm2d
  public let second: Linear

  init(_ registry: ParameterRegistry, inputFeatures: Int, size: ProjectionSize) {
    // No bias before BatchNorm: the normalisation would remove it.
    first = Linear(registry, name: "projection.0", inputFeatures: inputFeatures, outputFeatures: size.hidden, bias: false)
    norm = BatchNorm2d(registry, name: "projection.1", channels: size.hidden, appliesReLU: true, group: .head)
    second = Linear(registry, name: "projection.3", inputFeatures: size.hidden, outputFeatures: size.output)
  }

  func initialize(_ rng: inout SplitMix64) {
    first.initialize(&rng)
    norm.initialize()
    second.initialize(&rng)
  }

  /// features [N, D] -> embeddings [N, output]
  func forward(_ features: UnsafePointer<Float>, batch: Int) -> UnsafeMutablePointer<Float> {
    let h = Profiler.time(.linear) { first.forward(features, batch: batch) }
    let map = FeatureMap(data: h, batch: batch, height: 1, width: 1, channels: first.outputFeatures)
    let a = Profiler.time(.batchnorm) { norm.forward(map) }
    return Profiler.time(.linear) { second.forward(a.data, batch: batch) }
  }

  func backward(_ dy: UnsafePointer<Float>) -> UnsafeMutablePointer<Float>? {
    guard let da = Profiler.time(.linear, { second.backward(dy) }) else { return nil }
    guard let dh = Profiler.time(.batchnorm, { norm.backward(da) }) else { return nil }
    return Profiler.time(.linear) { first.backward(dh.data) }
  }

  func configureGradients(inputGradient: Bool) {
    first.computesInputGradient = inputGradient
    norm.computesInputGradient = inputGradient || first.weight.requiresGradient
    second.computesInputGradient = norm.computesInputGradient || norm.weight.requiresGradient || norm.bias.requiresGradient
  }
}

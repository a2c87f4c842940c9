// Conv2d (no bias) as a forward/backward pair, lowered to sgemm over NHWC activations.
import Tensors

public final class Conv2d {
  public let inputChannels: Int
  public let outputChannels: Int
  public let kernelSize: Int
  public let stride: Int
  public let padding: Int
  /// [outputChannels, kernelSize, kernelSize, inputChannels] (OHWI).
  public let weight: Parameter
  /// False for the first layer, and for every layer below the lowest one that trains.
  public var computesInputGradient = true

  private var input: FeatureMap?
  private var geometry: ConvGeometry?
  private var output = Workspace()
  private var lowered = Workspace()  // col[N*OH*OW, K*K*C], kept from forward for dW
  private var loweredGradient = Workspace()
  private var inputGradient = Workspace()

  public init(
    _ registry: ParameterRegistry, name: String, inputChannels: Int, outputChannels: Int,
    kernelSize: Int, stride: Int = 1, padding: Int = 0, group: ParameterGroup = .backbone
  ) {
    self.inputChannels = inputChannels
    self.outputChannels = outputChannels
    self.kernelSize = kernelSize
    self.stride = stride
    self.padding = padding
    weight = registry.parameter(
      "\(name).weight", shape: [outputChannels, inputChannels, kernelSize, kernelSize],
      kind: .convolution, group: group, storage: .ohwi)
  }

  /// Kaiming-normal (fan-out, ReLU gain) like torchvision's ResNet.
  public func initialize(_ rng: inout SplitMix64) {
    let std = (2.0 / Float(outputChannels * kernelSize * kernelSize)).squareRoot()
    for i in 0..<weight.count { weight.value[i] = rng.normal() * std }
  }

  public func outputSize(height: Int, width: Int) -> (Int, Int) {
    ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
  }

  /// Multiply-adds x2 of the last forward pass.
  public var lastForwardFLOPs: Double {
    guard let g = geometry else { return 0 }
    return 2 * Double(g.rows) * Double(g.columns) * Double(outputChannels)
  }

  // x: [N, H, W, Cin] -> y: [N, OH, OW, Cout]
  public func forward(_ x: FeatureMap) -> FeatureMap {
    precondition(x.channels == inputChannels, "conv expects \(inputChannels) channels, got \(x.channels)")
    let g = ConvGeometry(
      batch: x.batch, height: x.height, width: x.width, channels: inputChannels,
      kernel: kernelSize, stride: stride, padding: padding)
    input = x
    geometry = g
    let y = output.pointer(count: g.rows * outputChannels)
    let col: UnsafePointer<Float>
    if g.isPointwise {
      col = UnsafePointer(x.data)
    } else {
      let buffer = lowered.pointer(count: g.rows * g.columns)
      Im2Col.lower(x.data, g, into: buffer)
      col = UnsafePointer(buffer)
    }
    BLAS.sgemm(
      transposeB: true, m: g.rows, n: outputChannels, k: g.columns,
      a: col, lda: g.columns, b: weight.value, ldb: g.columns, c: y, ldc: outputChannels)
    return FeatureMap(
      data: y, batch: x.batch, height: g.outputHeight, width: g.outputWidth, channels: outputChannels)
  }

  /// dy: [N, OH, OW, Cout]. Accumulates dW (when the weight trains); returns dx when
  /// `computesInputGradient`, else nil.
  public func backward(_ dy: UnsafePointer<Float>) -> FeatureMap? {
    guard let x = input, let g = geometry else { preconditionFailure("backward before forward") }
    let col: UnsafePointer<Float> = g.isPointwise ? UnsafePointer(x.data) : UnsafePointer(lowered.tensor!.data)
    if weight.requiresGradient {
      BLAS.sgemm(
        transposeA: true, m: outputChannels, n: g.columns, k: g.rows,
        a: dy, lda: outputChannels, b: col, ldb: g.columns, beta: 1, c: weight.gradient, ldc: g.columns)
    }
    guard computesInputGradient else { return nil }
    let dx = inputGradient.pointer(count: x.count)
    let dcol = g.isPointwise ? dx : loweredGradient.pointer(count: g.rows * g.columns)
    BLAS.sgemm(
      m: g.rows, n: g.columns, k: outputChannels,
      a: dy, lda: outputChannels, b: weight.value, ldb: g.columns, c: dcol, ldc: g.columns)
    if !g.isPointwise { Im2Col.scatter(dcol, g, into: dx) }
    return x.with(data: dx)
  }
}

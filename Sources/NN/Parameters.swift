// The parameter registry: every trainable tensor in one contiguous buffer, its gradients in
// another, running statistics in a third, each entry named as torchvision names it.
import Tensors

/// What a parameter is, for the filters that fine-tuning strategies and optimizers apply.
public enum ParameterKind: String, Sendable, CaseIterable {
  case convolution
  /// BatchNorm weight (gamma) and bias (beta).
  case normalization
  case linear
}

/// Where a parameter sits in the network.
public enum ParameterGroup: String, Sendable, CaseIterable {
  case backbone
  /// The downsample projections (1x1 convolution and its BatchNorm) of the residual blocks.
  case shortcut
  /// Layers after the backbone: the classifier, or SimCLR's projection head.
  case head
}

/// A parameter or a state buffer. `shape` is torchvision's; `storage` records how the floats are
/// actually ordered here (convolution weights are OHWI, see `Tensor`).
public final class Parameter {
  public enum Storage: Sendable { case plain, ohwi }

  public let name: String
  public let shape: [Int]
  public let kind: ParameterKind
  public let group: ParameterGroup
  public let storage: Storage
  public let count: Int
  /// Offset of the first float in the registry's buffer.
  public fileprivate(set) var offset = 0
  /// Whether the optimizer updates it and backward computes its gradient.
  public var requiresGradient = true
  public fileprivate(set) var value: UnsafeMutablePointer<Float>!
  public fileprivate(set) var gradient: UnsafeMutablePointer<Float>!
  /// The tensors `value` and `gradient` point into, kept alive as long as the parameter is.
  fileprivate var backing: [Tensor] = []

  /// The network stage it belongs to: `layer1` ... `layer4`, the stem, or the head. A
  /// data-parallel reducer keeps each of its buckets within one stage.
  public var stage: String {
    let first = name.prefix { $0 != "." }
    if first.hasPrefix("layer") { return String(first) }
    return group == .head ? "head" : "stem"
  }

  init(name: String, shape: [Int], kind: ParameterKind, group: ParameterGroup, storage: Storage) {
    self.name = name
    self.shape = shape
    self.kind = kind
    self.group = group
    self.storage = storage
    self.count = shape.reduce(1, *)
  }
}

/// Collects parameters and state buffers while a model is built, then places them in contiguous
/// storage. A data-parallel step all-reduces `gradients` as one buffer; a checkpoint or a
/// broadcast moves `values` and `state` as two.
public final class ParameterRegistry {
  public private(set) var parameters: [Parameter] = []
  public private(set) var buffers: [Parameter] = []
  public private(set) var values = Tensor(shape: [0])
  public private(set) var gradients = Tensor(shape: [0])
  public private(set) var state = Tensor(shape: [0])
  private var prefixes: [String] = []

  public init() {}

  /// Names registered inside `body` are prefixed with `name.` (torchvision's module paths).
  public func scope<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
    prefixes.append(name)
    defer { prefixes.removeLast() }
    return try body()
  }

  private func qualified(_ name: String) -> String {
    (prefixes + [name]).joined(separator: ".")
  }

  public func parameter(
    _ name: String, shape: [Int], kind: ParameterKind, group: ParameterGroup,
    storage: Parameter.Storage = .plain
  ) -> Parameter {
    let p = Parameter(name: qualified(name), shape: shape, kind: kind, group: group, storage: storage)
    parameters.append(p)
    return p
  }

  public func buffer(_ name: String, shape: [Int], group: ParameterGroup) -> Parameter {
    let b = Parameter(name: qualified(name), shape: shape, kind: .normalization, group: group, storage: .plain)
    b.requiresGradient = false
    buffers.append(b)
    return b
  }

  /// Allocates the three buffers and points every entry into them. Called once, after building.
  public func allocate() {
    func place(_ entries: [Parameter], in tensor: Tensor, gradients: Tensor?) {
      var offset = 0
      for p in entries {
        p.offset = offset
        p.value = tensor.data + offset
        p.gradient = gradients.map { $0.data + offset }
        p.backing = [tensor] + (gradients.map { [$0] } ?? [])
        offset += p.count
      }
    }
    let total = parameters.reduce(0) { $0 + $1.count }
    values = Tensor(shape: [total])
    gradients = Tensor(shape: [total])
    place(parameters, in: values, gradients: gradients)
    state = Tensor(shape: [buffers.reduce(0) { $0 + $1.count }])
    place(buffers, in: state, gradients: nil)
  }

  public var parameterCount: Int { values.count }

  /// Zeroes every gradient, before a backward pass accumulates into them; nothing to do right
  /// after a `step(_:)` that left them zero.
  public func zeroGradients() {
    if gradientsAreZero {
      gradientsAreZero = false
      return
    }
    Elementwise.zero(gradients.data, count: gradients.count)
  }

  /// Whether the last `step(_:)` left every gradient zero, with nothing written since.
  private var gradientsAreZero = false

  /// `optimizer.step()` in a training loop that zeroes the gradients before each backward.
  /// When the optimizer updates every parameter that requires a gradient (no other gradient
  /// is ever written), its step zeroes each gradient as it reads it, and the next
  /// `zeroGradients` has nothing left to do: one pass over the whole gradient buffer fewer per
  /// step. `ResNet.backward` (or `gradientsWritten`) cancels that.
  public func step(_ optimizer: Optimizer) {
    let updated = Set(optimizer.parameters.map(ObjectIdentifier.init))
    let covered = parameters.allSatisfy { !$0.requiresGradient || updated.contains(ObjectIdentifier($0)) }
    optimizer.step(zeroingGradients: covered)
    gradientsAreZero = covered
  }

  /// Tells the registry that gradients are being written: the next `zeroGradients` zeroes them.
  public func gradientsWritten() { gradientsAreZero = false }

  public func parameters(where include: (Parameter) -> Bool) -> [Parameter] {
    parameters.filter(include)
  }

  /// Every parameter and buffer by name.
  public func entry(named name: String) -> Parameter? {
    parameters.first { $0.name == name } ?? buffers.first { $0.name == name }
  }

  public var entries: [Parameter] { parameters + buffers }
}

extension Parameter {
  /// The values in torchvision's order (OIHW for convolution weights).
  public func torchOrdered() -> [Float] { torchOrdered(value) }

  /// The gradient in torchvision's order.
  public func torchOrderedGradient() -> [Float] { torchOrdered(gradient) }

  /// The values in torchvision's order, read from a copy of the registry buffer this entry
  /// lives in (values for parameters, state for buffers): checkpoints are encoded from a
  /// snapshot while training goes on.
  public func torchOrdered(inCopyOf buffer: UnsafePointer<Float>) -> [Float] { torchOrdered(buffer + offset) }

  private func torchOrdered(_ source: UnsafePointer<Float>) -> [Float] {
    var out = [Float](repeating: 0, count: count)
    out.withUnsafeMutableBufferPointer { reorder(source, into: $0.baseAddress!, toTorch: true) }
    return out
  }

  /// Sets the values from floats in torchvision's order.
  public func setTorchOrdered(_ source: UnsafeBufferPointer<Float>) {
    precondition(source.count == count)
    reorder(source.baseAddress!, into: value, toTorch: false)
  }

  private func reorder(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, toTorch: Bool) {
    guard storage == .ohwi else {
      target.update(from: source, count: count)
      return
    }
    let (o, i, h, w) = (shape[0], shape[1], shape[2], shape[3])
    for a in 0..<o {
      for b in 0..<i {
        for y in 0..<h {
          for x in 0..<w {
            let torch = ((a * i + b) * h + y) * w + x
            let ours = ((a * h + y) * w + x) * i + b
            if toTorch { target[torch] = source[ours] } else { target[ours] = source[torch] }
          }
        }
      }
    }
  }
}

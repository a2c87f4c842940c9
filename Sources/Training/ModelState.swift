// Moving a model's parameters and running statistics to and from named tensors (checkpoints,
// safetensors), in torchvision's names, shapes and element order.
import Foundation
import NN
import Tensors

public enum ModelStateError: Error, CustomStringConvertible {
  case missing(source: String, name: String)
  case shape(source: String, name: String, expected: [Int], found: [Int])
  case unexpected(source: String, names: [String])

  public var description: String {
    switch self {
    case .missing(let source, let name):
      return "\(source): has no tensor '\(name)': was it saved from a different model (check --model, --width, --stem)?"
    case .shape(let source, let name, let expected, let found):
      return "\(source): tensor '\(name)' has shape \(found) but this model needs \(expected): check --model, --width and --stem"
    case .unexpected(let source, let names):
      return "\(source): tensors this model does not have: \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? ", ..." : ""): was it saved from a different model?"
    }
  }
}

extension ResNet {
  /// Every parameter and buffer, in registry order.
  public func namedTensors() -> [NamedTensor] {
    registry.entries.map { NamedTensor(name: $0.name, shape: $0.shape, values: $0.torchOrdered()) }
  }

  /// Sets parameters and buffers from `tensors`. With `allowMissingHead`, the `fc` tensors may
  /// be absent (a pretrained backbone gets a fresh head); other differences are errors.
  public func load(_ tensors: [String: NamedTensor], source: String, allowMissingHead: Bool = false, allowExtra: Bool = false) throws {
    for entry in registry.entries {
      guard let t = tensors[entry.name] else {
        if allowMissingHead && entry.group == .head { continue }
        throw ModelStateError.missing(source: source, name: entry.name)
      }
      guard t.shape == entry.shape || (entry.shape.isEmpty && t.values.count == 1) else {
        throw ModelStateError.shape(source: source, name: entry.name, expected: entry.shape, found: t.shape)
      }
    }
    if !allowExtra {
      let known = Set(registry.entries.map(\.name))
      let extra = tensors.keys.filter { !known.contains($0) }.sorted()
      guard extra.isEmpty else { throw ModelStateError.unexpected(source: source, names: extra) }
    }
    for entry in registry.entries {
      guard let t = tensors[entry.name] else { continue }
      t.values.withUnsafeBufferPointer { entry.setTorchOrdered($0) }
    }
    weightsChanged()
  }
}

extension SafeTensors {
  /// Every tensor as Float, by name.
  public func namedTensors() throws -> [String: NamedTensor] {
    var out: [String: NamedTensor] = [:]
    for name in names {
      out[name] = NamedTensor(name: name, shape: entries[name]!.shape, values: try floats(name))
    }
    return out
  }
}

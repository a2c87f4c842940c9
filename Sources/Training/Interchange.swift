// Checkpoint metadata, and weights to and from safetensors files with torchvision's names.
import Foundation
import NN
import Tensors

public enum InterchangeError: Error, CustomStringConvertible {
  case cannotInfer(source: String, reason: String)
  case badMetadata(source: String, reason: String)

  public var description: String {
    switch self {
    case .cannotInfer(let source, let reason):
      return "\(source): \(reason)"
    case .badMetadata(let source, let reason):
      return "\(source): the checkpoint's metadata is unusable: \(reason)"
    }
  }
}

extension ResNetConfiguration {
  /// The JSON form kept in checkpoints.
  public var metadata: [String: Any] {
    var m: [String: Any] = ["model": depth.rawValue, "stem": stem.rawValue, "width": width]
    if let classes { m["classes"] = classes }
    if let projection { m["projection"] = [projection.hidden, projection.output] }
    return m
  }

  public init(metadata: Any?, source: String) throws {
    guard let m = metadata as? [String: Any], let model = m["model"] as? String, let depth = ResNetDepth(rawValue: model),
      let stemName = m["stem"] as? String, let stem = Stem(rawValue: stemName), let width = (m["width"] as? NSNumber)?.doubleValue
    else {
      throw InterchangeError.badMetadata(source: source, reason: "no usable model description (model, stem, width)")
    }
    // Checked here, against the limits of any model fairtune builds, so that a damaged or
    // hand-edited description is an error naming the checkpoint, not a model of absurd size.
    if let problem = ResNetConfiguration.widthProblem(width) {
      throw InterchangeError.badMetadata(source: source, reason: "width \(problem)")
    }
    func size(_ value: Any?, _ what: String) throws -> Int? {
      guard let value else { return nil }
      guard let n = value as? Int, (1...(1 << 20)).contains(n) else {
        throw InterchangeError.badMetadata(source: source, reason: "\(what) must be a whole number from 1 to \(1 << 20), not \(value)")
      }
      return n
    }
    var projection: ProjectionSize?
    if let pair = m["projection"] {
      guard let sizes = pair as? [Any], sizes.count == 2 else {
        throw InterchangeError.badMetadata(source: source, reason: "projection must be [hidden, output]")
      }
      projection = ProjectionSize(hidden: try size(sizes[0], "the projection's hidden size")!, output: try size(sizes[1], "the projection's output size")!)
    }
    let classes = try size(m["classes"], "classes")
    guard classes == nil || projection == nil else {
      throw InterchangeError.badMetadata(source: source, reason: "it has both classes and a projection head; a model has one head")
    }
    self.init(depth: depth, stem: stem, width: width, classes: classes, projection: projection)
  }

  /// Stem, width and head read off torchvision-named tensors for a model of `depth`.
  public static func infer(depth: ResNetDepth, from tensors: [String: NamedTensor], source: String) throws -> ResNetConfiguration {
    guard let conv1 = tensors["conv1.weight"], conv1.shape.count == 4 else {
      throw InterchangeError.cannotInfer(source: source, reason: "no 4-D 'conv1.weight': not a torchvision ResNet state dict")
    }
    let stem: Stem
    switch conv1.shape[2] {
    case 7: stem = .imagenet
    case 3: stem = .small
    default:
      throw InterchangeError.cannotInfer(source: source, reason: "'conv1.weight' has a \(conv1.shape[2])x\(conv1.shape[3]) kernel; fairtune knows 7x7 (imagenet) and 3x3 (small) stems")
    }
    let classes = tensors["fc.weight"].map { $0.shape[0] }
    return ResNetConfiguration(depth: depth, stem: stem, width: Double(conv1.shape[0]) / 64, classes: classes, inputChannels: conv1.shape[1])
  }
}

public enum Interchange {
  /// `importSafeTensors(_:depth:)` for a model named as `--model` names it.
  public static func importSafeTensors(_ path: String, model: String) throws -> (model: ResNet, assumptions: [String]) {
    guard let depth = ResNetDepth(rawValue: model) else {
      throw RunSettingsError(description: "--model '\(model)' is not a model: use \(ModelSpec.modelNames.joined(separator: ", ")).")
    }
    return try importSafeTensors(path, depth: depth)
  }

  /// A model built from a torchvision-named safetensors file, with what was assumed to make it
  /// fit (one sentence each; empty when the file is a plain torchvision state dict).
  public static func importSafeTensors(_ path: String, depth: ResNetDepth) throws -> (model: ResNet, assumptions: [String]) {
    var (tensors, assumptions) = publishedState(try SafeTensors(contentsOf: path).namedTensors())
    let configuration = try ResNetConfiguration.infer(depth: depth, from: tensors, source: path)
    let model = try ResNet(configuration)
    // Float-only state dicts leave out BatchNorm's batch counter (an int64 that nothing reads
    // in eval or fine-tuning with a momentum): it starts at 0, as in a fresh torch model. Only
    // when the file has none of them, so a file that lost some is still refused by name.
    let counters = model.registry.entries.filter { $0.name.hasSuffix(".num_batches_tracked") }
    if !counters.isEmpty && !tensors.keys.contains(where: { $0.hasSuffix(".num_batches_tracked") }) {
      for entry in counters { tensors[entry.name] = NamedTensor(name: entry.name, shape: entry.shape, values: [0]) }
      assumptions.append("the file has no num_batches_tracked tensors (a float-only state dict): the \(counters.count) BatchNorm batch counters start at 0")
    }
    try model.load(tensors, source: path)
    return (model, assumptions)
  }

  /// Undoes what common ways of saving a ResNet add to torchvision's names: the "module."
  /// prefix of a DistributedDataParallel (or DataParallel) model, stripped only when every name
  /// has it.
  static func publishedState(_ tensors: [String: NamedTensor]) -> (tensors: [String: NamedTensor], assumptions: [String]) {
    let prefix = "module."
    guard !tensors.isEmpty, tensors.keys.allSatisfy({ $0.hasPrefix(prefix) }) else { return (tensors, []) }
    var stripped: [String: NamedTensor] = [:]
    for (name, tensor) in tensors {
      let plain = String(name.dropFirst(prefix.count))
      stripped[plain] = NamedTensor(name: plain, shape: tensor.shape, values: tensor.values)
    }
    return (stripped, ["every tensor name starts with '\(prefix)' (a DistributedDataParallel state): the prefix was removed"])
  }

  /// Writes every parameter and buffer with torchvision's names, shapes and dtypes
  /// (num_batches_tracked as int64, as torch keeps it).
  public static func exportSafeTensors(_ model: ResNet, to path: String, metadata: [String: String] = [:]) throws {
    var tensors: [(name: String, dtype: SafeTensors.DType, shape: [Int], bytes: Data)] = []
    for t in model.namedTensors() {
      if t.name.hasSuffix("num_batches_tracked") {
        var count = Int64(t.values.first ?? 0).littleEndian
        tensors.append((t.name, .i64, t.shape, Data(bytes: &count, count: 8)))
      } else {
        tensors.append((t.name, .f32, t.shape, SafeTensors.bytes(of: t.values)))
      }
    }
    try SafeTensors.write(tensors, metadata: metadata.merging(["format": "pt"]) { a, _ in a }, to: path)
  }

  /// A checkpoint holding only a model (no training state): what `import` writes.
  public static func modelCheckpoint(_ model: ResNet, kind: String, extra: [String: Any] = [:]) -> Checkpoint {
    var metadata: [String: Any] = ["format": "fairtune", "kind": kind, "model": model.configuration.metadata]
    for (k, v) in extra { metadata[k] = v }
    return Checkpoint(metadata: metadata, tensors: model.namedTensors())
  }

  /// The model a checkpoint describes, with its weights.
  public static func model(from checkpoint: Checkpoint, source: String) throws -> ResNet {
    let configuration = try ResNetConfiguration(metadata: checkpoint.metadata["model"], source: source)
    let model = try ResNet(configuration)
    let tensors = Dictionary(checkpoint.tensors.map { ($0.name, $0) }) { a, _ in a }
    try model.load(tensors, source: source, allowExtra: true)
    return model
  }
}

// `fairtune import`, `fairtune export` and `fairtune inspect`: weights in and out, and what a
// checkpoint holds.
import ArgumentParser
import Data
import Foundation
import Training

struct ImportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Make a checkpoint from torchvision weights (a safetensors file of a ResNet state dict).",
    discussion: paragraphs("""
      Names, shapes and element order are torchvision's (`conv1.weight`, `layer1.0.bn1.running_mean`,
      `fc.weight`, ...). The stem, the width and the head size are read off the tensors; --model
      says which depth. A file without `fc.*` gives a backbone checkpoint (a head is added when
      fine-tuning). Two common variants of published weights are accepted, and the command says
      so when it meets one: names that all start with `module.` (a state saved from
      DistributedDataParallel; the prefix is removed), and a state without the
      `num_batches_tracked` counters (a float-only state dict; the counters start at 0). Any
      other tensor that does not fit the model is refused by name.
      """))

  @Option(help: "The safetensors file to read.")
  var safetensors: String

  @Option(help: "Architecture: resnet18, resnet34 or resnet50.")
  var model: String

  @Option(help: "The checkpoint to write.")
  var out: String

  func validate() throws {
    guard ModelSpec.modelNames.contains(model) else {
      throw ValidationError("--model '\(model)' is not a model: use \(ModelSpec.modelNames.joined(separator: ", ")).")
    }
    guard FileManager.default.fileExists(atPath: safetensors) else {
      throw ValidationError("--safetensors \(safetensors): no such file.")
    }
  }

  func run() throws {
    let (resnet, assumptions) = try Interchange.importSafeTensors(safetensors, model: model)
    for assumption in assumptions { print("\(safetensors): \(assumption)") }
    try Interchange.modelCheckpoint(resnet, kind: "import", extra: ["source": (safetensors as NSString).lastPathComponent]).write(to: out)
    let c = resnet.configuration
    print("\(out): \(c.depth.rawValue), stem \(c.stem.rawValue), width \(c.width), \(c.classes.map { "\($0)-way head" } ?? "no head"), \(resnet.registry.parameterCount) parameters")
  }
}

struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write a checkpoint's model as safetensors with torchvision's names (for torch's load_state_dict).")

  @Argument(help: "The checkpoint to read.")
  var checkpoint: String

  @Option(help: "The safetensors file to write.")
  var safetensors: String

  func run() throws {
    let model = try Interchange.model(from: try Checkpoint.read(checkpoint), source: checkpoint)
    try Interchange.exportSafeTensors(model, to: safetensors)
    print("\(safetensors): \(model.registry.entries.count) tensors")
  }
}

struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Show a checkpoint's metadata, tensors, sizes, compression ratio and checksum status.")

  @Argument(help: "The checkpoint to read.")
  var checkpoint: String

  @Flag(help: "List every tensor (default: the first 20).")
  var all = false

  @Option(help: ArgumentHelp(
    "Instead: measure the checkpoint's BatchNorm running statistics against a packed dataset's train images.",
    discussion: paragraphs("""
      The images (the first --bn-images of the train split, plain) pass through the checkpoint's \
      backbone with batch statistics; per BatchNorm layer, prints the mean over channels of \
      |running mean - data mean| / data standard deviation and of |log(running var / data var)|, \
      and their means over the layers (docs/mechanism.md). With --json, one JSON object instead.
      """)))
  var bnData: String?

  @Option(help: "Train images of --bn-data's measurement.")
  var bnImages: Int = 2048

  @Flag(help: "With --bn-data: print JSON (layers, and the mean over them).")
  var json = false

  func validate() throws {
    guard bnImages > 0 else { throw ValidationError("--bn-images must be positive (got \(bnImages)).") }
    if json && bnData == nil { throw ValidationError("--json goes with --bn-data: it prints the BatchNorm measurement as JSON.") }
  }

  func run() throws {
    if let bnData { return try measureBatchNorm(bnData) }
    let bytes: [UInt8]
    do {
      bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: checkpoint)))
    } catch {
      throw CheckpointError.unreadable(path: checkpoint, reason: error.localizedDescription)
    }
    let (ckpt, records) = try Checkpoint.decode(bytes, path: checkpoint)
    let metadata = try JSONSerialization.data(withJSONObject: ckpt.metadata, options: [.prettyPrinted, .sortedKeys])
    print("\(checkpoint): fairtune checkpoint version \(Checkpoint.version), \(bytes.count) bytes, every checksum verified")
    print(String(decoding: metadata, as: UTF8.self))
    let raw = records.reduce(0) { $0 + $1.rawBytes }
    let compressed = records.reduce(0) { $0 + $1.compressedBytes }
    print(String(format: "%d tensors, %d floats, %.1f MB raw, %.1f MB stored: compression %.3fx", records.count, raw / 4,
      Double(raw) / 1e6, Double(compressed) / 1e6, Double(raw) / Double(max(compressed, 1))))
    for r in records.prefix(all ? records.count : 20) {
      let name = r.name.padding(toLength: max(45, r.name.count), withPad: " ", startingAt: 0)
      let shape = "\(r.shape)".padding(toLength: 20, withPad: " ", startingAt: 0)
      print("  \(name) \(shape) \(String(format: "%10d -> %10d bytes", r.rawBytes, r.compressedBytes))  \(r.checksumMatches ? "ok" : "BAD")")
    }
    if !all && records.count > 20 { print("  ... \(records.count - 20) more (--all lists them)") }
  }

  private func measureBatchNorm(_ data: String) throws {
    let backbone: PretrainedBackbone
    // The error names the checkpoint.
    do { backbone = try PretrainedBackbone.read(checkpoint) } catch { throw ValidationError("\(error)") }
    let model = try FineTuning.model(ModelSpec(model: "resnet18", width: 1, stem: "imagenet", imageSize: 64), pretrained: backbone, seed: 0)
    let dataset = try PackedDataset(path: URL(fileURLWithPath: data))
    let images = Array(dataset.train.prefix(bnImages))
    guard !images.isEmpty else { throw ValidationError("--bn-data \(data) has no train images to measure with.") }
    let threads = ProcessInfo.processInfo.activeProcessorCount
    Launch.setThreads(threads)
    let measured = BatchNormDrift.measure(model, dataset: dataset, images: images, batch: 128, threads: threads)
    let rows = BatchNormDrift.distances(of: BatchNormDrift.running(model), from: measured)
    if json {
      let object: [String: Any] = [
        "checkpoint": checkpoint, "data": data, "images": images.count,
        "layers": rows.dropLast().map { ["layer": $0.layer, "mean": $0.mean, "log_variance": $0.logVariance] },
        "mean": rows.last!.mean, "log_variance": rows.last!.logVariance,
      ]
      print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
      return
    }
    print("\(checkpoint): running statistics against \(images.count) plain train images of \(data)")
    print("layer                          |dmean|/sd  |log var ratio|")
    for row in rows {
      print(row.layer.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: " %10.3f %16.3f", row.mean, row.logVariance))
    }
  }
}

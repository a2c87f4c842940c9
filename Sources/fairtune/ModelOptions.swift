// Options shared by every command that builds a model.
import ArgumentParser
import Data
import Foundation
import Training

struct ModelOptions: ParsableArguments {
  @Option(name: .customLong("model"), help: "Architecture: resnet18, resnet34 or resnet50 (default: resnet18, or the --from checkpoint's).")
  var modelChoice: String?

  @Option(name: .customLong("width"), help: "Channel multiplier, 0.25 = a quarter of torchvision's channels (default: 1, or the --from checkpoint's).")
  var widthChoice: Double?

  @Option(
    name: .customLong("stem"),
    help: "Stem: imagenet (7x7/2 conv + max-pool) or small (3x3/1 conv, no pool, for 32-64 px) (default: imagenet, or the --from checkpoint's).")
  var stemChoice: String?

  @Option(name: .customLong("image-size"), help: "Input images are SIZE x SIZE pixels (default: 64, or the --from checkpoint's).")
  var imageSizeChoice: Int?

  var model: String { modelChoice ?? "resnet18" }
  var width: Double { widthChoice ?? 1 }
  var stem: String { stemChoice ?? "imagenet" }
  var imageSize: Int { imageSizeChoice ?? 64 }

  func validate() throws {
    if let problem = spec.problem { throw ValidationError(problem) }
  }

  /// The values these options give (checked by `validate`).
  var spec: ModelSpec { ModelSpec(model: model, width: width, stem: stem, imageSize: imageSize) }

  /// The options with what was not given taken from the checkpoint that `--from` names: its
  /// model, width and stem, and the image size it was trained at when it records one. An option
  /// given on the command line that contradicts the checkpoint is refused, naming both values.
  func adopting(_ checkpoint: Checkpoint, source: String) throws -> ModelOptions {
    let recorded = try ModelSpec.recorded(in: checkpoint, source: source)
    var adopted = self
    func check<Value: Equatable>(_ option: String, _ given: Value?, _ held: Value) throws -> Value {
      if let given, given != held {
        throw ValidationError("\(option) \(given) contradicts --from \(source), which holds a model with \(option) \(held): drop \(option) (it is taken from the checkpoint) or pass another --from.")
      }
      return held
    }
    adopted.modelChoice = try check("--model", modelChoice, recorded.model)
    adopted.widthChoice = try check("--width", widthChoice, recorded.width)
    adopted.stemChoice = try check("--stem", stemChoice, recorded.stem)
    if let size = recorded.imageSize {
      adopted.imageSizeChoice = try check("--image-size", imageSizeChoice, size)
    }
    try adopted.validate()
    return adopted
  }

  /// With no --image-size given (nor taken from a checkpoint), a packed dataset's own size, so
  /// that `--data` packed at 32 px needs no `--image-size 32` beside it.
  func adoptingImageSize(ofData path: String) throws -> ModelOptions {
    let url = URL(fileURLWithPath: path)
    guard imageSizeChoice == nil, FileManager.default.fileExists(atPath: url.appendingPathComponent(PackedDataset.labelFile).path),
      let dataset = try? PackedDataset(path: url)
    else { return self }
    var adopted = self
    adopted.imageSizeChoice = dataset.imageSize
    try adopted.validate()
    return adopted
  }
}

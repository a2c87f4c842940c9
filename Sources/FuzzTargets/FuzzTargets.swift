// The fuzz targets: every reader of outside data, fed arbitrary bytes. A reader may accept the
// bytes or reject them with an error that names its file; anything else (a trap, a sanitizer
// report, a leak, a hang, an allocation out of proportion to the input) is a bug.
// `fairtune-fuzz` runs them under libFuzzer (scripts/fuzz.sh) or replays corpus files.
import CelebAFormat
import Data
import Fairness
import Foundation
import NN
import Tensors
import Training

public enum FuzzTarget: String, CaseIterable, Sendable {
  case checkpoint, safetensors, attributes, partition, scores, packed, journal, space

  /// What the target reads, for `fairtune-fuzz --help`.
  public var summary: String {
    switch self {
    case .checkpoint: return "a .ckpt file (Checkpoint.decode)"
    case .safetensors: return "a .safetensors file (SafeTensors, then every tensor as floats)"
    case .attributes: return "CelebA's list_attr_celeba.txt, lenient and strict"
    case .partition: return "CelebA's list_eval_partition.txt, lenient and strict"
    case .scores: return "a scores CSV (fairtune fairness --scores)"
    case .packed: return "a packed dataset: labels.bin, images-000.bin and images.txt, split on \(FuzzTarget.partSeparator)"
    case .journal: return "a sweep's journal.jsonl, replayed, then queried as the coordinator does"
    case .space: return "a --space JSON file, then trials drawn from it"
    }
  }

  /// Between the files of one `packed` input.
  public static let partSeparator = "\n--FTPART--\n"

  /// The name the readers give the input in their messages; every rejection must contain it.
  static let inputName = "fuzz-input"

  /// Feeds `bytes` to the reader. Returns nil when the reader accepted them, or its message.
  /// Traps (through `precondition`) when a rejection does not name the input, so that the
  /// fuzzer reports it like any other failure.
  @discardableResult
  public func run(_ bytes: [UInt8]) -> String? {
    do {
      try read(bytes)
      return nil
    } catch {
      let message = String(describing: error)
      precondition(
        message.contains(Self.inputName) || message.contains(Self.scratchName),
        "\(rawValue): the error does not name its file: \(message)")
      return message
    }
  }

  private func read(_ bytes: [UInt8]) throws {
    let name = Self.inputName
    switch self {
    case .checkpoint:
      let (checkpoint, records) = try Checkpoint.decode(bytes, path: name)
      precondition(records.count == checkpoint.tensors.count)
      for tensor in checkpoint.tensors {
        precondition(tensor.values.count == tensor.shape.reduce(1, *), "\(tensor.name): values do not fill the shape")
      }
      // What every command does next: the model description, then (for models small enough
      // to build for each input) the model with the checkpoint's weights.
      if let description = checkpoint.metadata["model"] {
        let configuration = try ResNetConfiguration(metadata: description, source: name)
        if configuration.depth == .resnet18 && configuration.width <= 1.0 / 16 {
          _ = try Interchange.model(from: checkpoint, source: name)
        }
      }
    case .safetensors:
      let file = try SafeTensors(bytes: Data(bytes), path: name)
      for entry in file.names {
        let values = try file.floats(entry)
        precondition(values.count == file.entries[entry]!.shape.reduce(1, *))
      }
    case .attributes:
      // The lenient reader (fairness metrics, any attributes) decides; the strict one (a
      // dataset read for training: CelebA's 40) must then accept or refuse by name as well.
      let table = try CelebAAttributes(TextFile(name: name, bytes: bytes))
      precondition(table.labels.count == table.images.count * table.names.count)
      Self.mayRefuse {
        let strict = try CelebAAttributes(TextFile(name: name, bytes: bytes), strict: true)
        precondition(strict.labels == table.labels, "the strict reader reads other labels")
        try strict.checkCelebAAttributeCount()
      }
    case .partition:
      let table = try CelebAPartition(TextFile(name: name, bytes: bytes))
      precondition(table.splits.count == table.images.count)
      Self.mayRefuse {
        let strict = try CelebAPartition(TextFile(name: name, bytes: bytes), strict: true)
        precondition(strict.splits == table.splits, "the strict reader reads other splits")
      }
    case .scores:
      let table = try ScoreTable(TextFile(name: name, bytes: bytes))
      precondition(table.scores.count == table.images.count * table.names.count)
      precondition(table.scores.allSatisfy(\.isFinite), "a score that is not finite was accepted")
    case .packed:
      try Self.withScratch { directory in
        let parts = Self.split(bytes, on: Array(Self.partSeparator.utf8))
        let files = [PackedDataset.labelFile, "images-000.bin", PackedDataset.namesFile, "images-001.bin"]
        for (file, part) in zip(files, parts) {
          try Data(part).write(to: directory.appendingPathComponent(file))
        }
        let dataset = try PackedDataset(path: directory, verify: true)
        // Touch the first and last byte of every image and label row, as a loader would.
        for index in 0..<dataset.count {
          let pixels = dataset.pixels(index)
          _ = pixels[0] &+ pixels[dataset.imageBytes - 1]
          if dataset.attributeCount > 0 {
            let labels = dataset.labels(index)
            _ = labels[0] &+ labels[dataset.attributeCount - 1]
          }
        }
      }
    case .journal:
      try Self.withScratch { directory in
        let path = directory.appendingPathComponent("journal.jsonl").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let journal = try Journal(path: path)
        for strategy in Set(journal.trials.values.map(\.settings.strategy)) {
          _ = journal.best(strategy: strategy)
          _ = journal.records(strategy: strategy)
          _ = journal.next(strategy: strategy, target: 3, maxFailures: 2, excluding: [])
          _ = journal.rungMetrics(strategy: strategy, epoch: 1, excluding: "")
        }
        _ = journal.csv()
        // Read again: what the first open appended (interrupted trials) must replay too.
        _ = try Journal(path: path, readOnly: true)
      }
    case .space:
      let space = try SearchSpace(json: Data(bytes), source: name)
      for index in 0..<4 {
        let trial = space.draw(seed: 7, strategy: "full", index: index, maxEpochs: 5)
        precondition(trial.learningRate.isFinite && trial.learningRate > 0, "drew learning rate \(trial.learningRate)")
        precondition((1...5).contains(trial.epochs), "drew \(trial.epochs) epochs of at most 5")
        precondition((0...trial.epochs).contains(trial.warmupEpochs))
      }
    }
  }

  /// Runs a second reader whose refusal is fine, as long as it names the input.
  private static func mayRefuse(_ body: () throws -> Void) {
    do {
      try body()
    } catch {
      let message = String(describing: error)
      precondition(message.contains(inputName), "the error does not name its file: \(message)")
    }
  }

  // MARK: Scratch files for the readers that open a path

  static let scratchName = "fairtune-fuzz-"

  /// Runs `body` with an empty directory that is removed afterwards.
  static func withScratch(_ body: (URL) throws -> Void) throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "\(scratchName)\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try body(directory)
  }

  static func split(_ bytes: [UInt8], on separator: [UInt8]) -> [[UInt8]] {
    var parts: [[UInt8]] = []
    var start = 0
    var index = 0
    while index + separator.count <= bytes.count {
      if bytes[index..<(index + separator.count)].elementsEqual(separator) {
        parts.append(Array(bytes[start..<index]))
        index += separator.count
        start = index
      } else {
        index += 1
      }
    }
    parts.append(Array(bytes[start...]))
    return parts
  }
}

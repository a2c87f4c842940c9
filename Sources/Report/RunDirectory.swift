// The run-directory contract: what a training run leaves behind for `fairtune report`.
import Fairness
import Foundation

/// The fine-tuning strategies of the paper and the supervised baseline, in report order.
public enum Strategy: String, CaseIterable, Sendable {
  case frozen
  case bnStats = "bn-stats"
  case bnStatsAffine = "bn-stats-affine"
  case bnStatsSkip = "bn-stats-skip"
  case full
  case supervised
}

/// One run directory, as written by the trainer and read by `fairtune report`:
///
/// `RUN/run.json`, one JSON object:
///
///     {
///       "strategy": "bn-stats",
///       "updated_parameters": 53120,
///       "updated_buffers": 53120,
///       "training_seconds": 5123.4,
///       "data": {"attributes": "../celeba/list_attr_celeba.txt",
///                "partition": "../celeba/list_eval_partition.txt"}
///     }
///
/// - `strategy`: one of frozen, bn-stats, bn-stats-affine, bn-stats-skip, full, supervised.
/// - `updated_parameters`: how many trainable values (weights and biases, the head included)
///   the strategy changes; a non-negative integer.
/// - `updated_buffers`: how many non-trainable values it changes (BatchNorm running means and
///   variances); a non-negative integer.
/// - `training_seconds`: wall-clock seconds the training of this model took; a non-negative
///   number.
/// - `data` (optional): the dataset's CelebA-format attribute and partition files; relative
///   paths are relative to RUN. `fairtune report --attributes/--partition` override it and are
///   required when a run has no `data`.
///
/// Scores, `image,<the 40 attribute names>` and one row per image (logits or probabilities):
/// `RUN/scores-train.csv` and `RUN/scores-test.csv` (what `fairtune finetune` and `fairtune
/// evaluate` write), or one `RUN/scores.csv` with the train and test images.
///
/// Other keys and files in RUN are ignored.
public struct RunRecord: Sendable {
  public let directory: URL
  public let strategy: Strategy
  public let updatedParameters: Int
  public let updatedBuffers: Int
  public let trainingSeconds: Double
  public let attributesFile: URL?
  public let partitionFile: URL?

  /// The scores of the test images, and of the train images when they are in a file of their own.
  public var scoresFiles: (scores: URL, train: URL?) {
    let test = directory.appendingPathComponent("scores-test.csv")
    let train = directory.appendingPathComponent("scores-train.csv")
    if FileManager.default.fileExists(atPath: test.path) && FileManager.default.fileExists(atPath: train.path) {
      return (test, train)
    }
    return (directory.appendingPathComponent("scores.csv"), nil)
  }

  public init(
    directory: URL, strategy: Strategy, updatedParameters: Int, updatedBuffers: Int, trainingSeconds: Double,
    attributesFile: URL? = nil, partitionFile: URL? = nil
  ) {
    self.directory = directory
    self.strategy = strategy
    self.updatedParameters = updatedParameters
    self.updatedBuffers = updatedBuffers
    self.trainingSeconds = trainingSeconds
    self.attributesFile = attributesFile
    self.partitionFile = partitionFile
  }

  /// The keys of run.json; every one optional here so that a missing key gets its own message.
  private struct Contents: Codable {
    struct DataFiles: Codable {
      var attributes: String
      var partition: String
    }
    var strategy: String?
    var updatedParameters: Int?
    var updatedBuffers: Int?
    var trainingSeconds: Double?
    var data: DataFiles?

    enum CodingKeys: String, CodingKey {
      case strategy
      case updatedParameters = "updated_parameters"
      case updatedBuffers = "updated_buffers"
      case trainingSeconds = "training_seconds"
      case data
    }
  }

  /// Reads `directory/run.json`.
  public init(directory: URL) throws {
    let file = directory.appendingPathComponent("run.json")
    let name = file.path
    let data: Data
    do {
      data = try Data(contentsOf: file)
    } catch {
      throw InputError(
        file: name, line: nil, "cannot be read (\(error.localizedDescription)); is \(directory.path) a run directory?")
    }
    let contents: Contents
    do {
      contents = try JSONDecoder().decode(Contents.self, from: data)
    } catch DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context) {
      let key = context.codingPath.map(\.stringValue).joined(separator: ".")
      throw InputError(file: name, line: nil, "\"\(key)\" should be \(Self.describe(type)).")
    } catch DecodingError.keyNotFound(let key, let context) {
      let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
      throw InputError(
        file: name, line: nil, "has no \"\(path)\"; \"data\" needs both \"attributes\" and \"partition\".")
    } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
      let key = context.codingPath.map(\.stringValue).joined(separator: ".")
      throw InputError(file: name, line: nil, "\"\(key)\" has a value of the wrong kind (\(context.debugDescription)).")
    } catch {
      throw InputError(
        file: name, line: nil, "is not a JSON object of the run-directory contract (\(error.localizedDescription)).")
    }
    guard let strategyName = contents.strategy else {
      throw InputError(file: name, line: nil, "has no \"strategy\"; use one of \(Self.strategyNames).")
    }
    guard let strategy = Strategy(rawValue: strategyName) else {
      throw InputError(file: name, line: nil, "strategy \"\(strategyName)\" is not one of \(Self.strategyNames).")
    }
    func required<Value: Comparable & Numeric>(_ value: Value?, _ key: String) throws -> Value {
      guard let value else { throw InputError(file: name, line: nil, "has no \"\(key)\".") }
      guard value >= 0 else {
        throw InputError(file: name, line: nil, "\"\(key)\" is \(value); it cannot be negative.")
      }
      return value
    }
    self.init(
      directory: directory, strategy: strategy,
      updatedParameters: try required(contents.updatedParameters, "updated_parameters"),
      updatedBuffers: try required(contents.updatedBuffers, "updated_buffers"),
      trainingSeconds: try required(contents.trainingSeconds, "training_seconds"),
      attributesFile: contents.data.map { Self.resolve($0.attributes, in: directory) },
      partitionFile: contents.data.map { Self.resolve($0.partition, in: directory) })
  }

  /// run.json for this record, as the trainer writes it.
  public func json() throws -> Data {
    var data: Contents.DataFiles?
    if let attributesFile, let partitionFile {
      data = Contents.DataFiles(attributes: attributesFile.path, partition: partitionFile.path)
    }
    let contents = Contents(
      strategy: strategy.rawValue, updatedParameters: updatedParameters, updatedBuffers: updatedBuffers,
      trainingSeconds: trainingSeconds, data: data)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try encoder.encode(contents)
  }

  /// An absolute path as it is, a relative one from inside the run directory.
  private static func resolve(_ path: String, in directory: URL) -> URL {
    let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
    return url.standardizedFileURL
  }

  private static var strategyNames: String { Strategy.allCases.map(\.rawValue).joined(separator: ", ") }

  private static func describe(_ type: Any.Type) -> String {
    switch type {
    case is Int.Type: "a non-negative integer"
    case is Double.Type: "a non-negative number"
    case is String.Type: "a string"
    default: "an object with \"attributes\" and \"partition\" paths"
    }
  }
}

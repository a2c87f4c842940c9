// RUN/run.json: what a fine-tuning run records for `fairtune report`, one typed value that the
// trainer writes and the report reads.
import Foundation

/// `RUN/run.json`, one JSON object:
///
///     {
///       "strategy": "bn-stats",
///       "updated_parameters": 53120,
///       "updated_buffers": 53120,
///       "training_seconds": 5123.4,
///       "validation_mean_f1": 0.61,
///       "feature_table": {"images": 20000, "seconds": 16.8},
///       "recalibration": {"images": 16000, "seconds": 9.1},
///       "bn_balance": "Male",
///       "precision": "fp32",
///       "data": {"attributes": "../celeba/list_attr_celeba.txt",
///                "partition": "../celeba/list_eval_partition.txt"}
///     }
///
/// - `strategy`: one of frozen, bn-recal, bn-stats, bn-stats-affine, bn-stats-skip, full, supervised.
/// - `updated_parameters`: how many trainable values (weights and biases, the head included)
///   the strategy changes; a non-negative integer.
/// - `updated_buffers`: how many non-trainable values it changes (BatchNorm running means and
///   variances); a non-negative integer.
/// - `training_seconds`: wall-clock seconds the training of this model took (a frozen run's
///   feature table included); a non-negative number.
/// - `validation_mean_f1` (optional): the validation mean F1 with thresholds from train.
/// - `feature_table` (optional): a frozen run's table of backbone features, its images and the
///   seconds it took.
/// - `recalibration` (optional): a bn-recal run's pass over the train images, its images and
///   seconds (part of `training_seconds`).
/// - `bn_balance` (optional): the attribute whose two groups a bn-recal run's statistics weigh
///   equally.
/// - `precision` (optional): what the products multiplied, fp32 (when absent too) or
///   bf16-emulated.
/// - `data` (optional): the dataset's CelebA-format attribute and partition files; relative
///   paths are relative to RUN.
///
/// Other keys are ignored.
public struct RunFile: Codable, Equatable, Sendable {
  /// Images passed through the backbone before training, and the seconds it took.
  public struct Pass: Codable, Equatable, Sendable {
    public var images: Int
    public var seconds: Double

    public init(images: Int, seconds: Double) {
      self.images = images
      self.seconds = seconds
    }
  }

  public struct DataFiles: Codable, Equatable, Sendable {
    public var attributes: String
    public var partition: String

    public init(attributes: String, partition: String) {
      self.attributes = attributes
      self.partition = partition
    }
  }

  public var strategy: Strategy
  public var updatedParameters: Int
  public var updatedBuffers: Int
  public var trainingSeconds: Double
  public var validationMeanF1: Double?
  public typealias FeatureTable = Pass
  public var featureTable: Pass?
  public var recalibration: Pass?
  public var bnBalance: String?
  public var precision: String?
  public var data: DataFiles?
  /// "converged" for a head solved by L-BFGS on the feature table (`--head converged`, and
  /// reproduce's converged heads of the selected models); absent for a head trained by its
  /// optimizer.
  public var head: String?
  /// The order of the collectives on the link (`--collectives`), for a run on several ranks.
  public var collectives: String?
  /// The gradients' format on the link (`--gradient-wire`), for a run on several ranks.
  public var gradientWire: String?

  enum CodingKeys: String, CodingKey {
    case strategy
    case updatedParameters = "updated_parameters"
    case updatedBuffers = "updated_buffers"
    case trainingSeconds = "training_seconds"
    case validationMeanF1 = "validation_mean_f1"
    case featureTable = "feature_table"
    case recalibration
    case bnBalance = "bn_balance"
    case precision
    case data
    case head
    case collectives
    case gradientWire = "gradient_wire"
  }

  public init(
    strategy: Strategy, updatedParameters: Int, updatedBuffers: Int, trainingSeconds: Double, validationMeanF1: Double? = nil,
    featureTable: FeatureTable? = nil, recalibration: Pass? = nil, bnBalance: String? = nil, precision: String? = nil,
    data: DataFiles? = nil, head: String? = nil, collectives: String? = nil, gradientWire: String? = nil
  ) {
    self.collectives = collectives
    self.gradientWire = gradientWire
    self.strategy = strategy
    self.updatedParameters = updatedParameters
    self.updatedBuffers = updatedBuffers
    self.trainingSeconds = trainingSeconds
    self.validationMeanF1 = validationMeanF1
    self.featureTable = featureTable
    self.recalibration = recalibration
    self.bnBalance = bnBalance
    self.precision = precision
    self.data = data
    self.head = head
  }

  /// The file's bytes: sorted keys, indented.
  public func encoded() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try encoder.encode(self)
  }

  /// What is wrong with a run.json, in words that name the key and say what it should hold.
  public struct Problem: Error, CustomStringConvertible, Sendable {
    public let description: String
  }

  /// Decodes run.json's bytes; a problem names the key that is missing or wrong.
  public static func decode(_ bytes: Data) throws -> RunFile {
    let file: RunFile
    do {
      file = try JSONDecoder().decode(RunFile.self, from: bytes)
    } catch DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context) {
      throw Problem(description: "\"\(key(context.codingPath))\" should be \(describe(type)).")
    } catch DecodingError.keyNotFound(let missing, let context) where context.codingPath.isEmpty && missing.stringValue == "strategy" {
      throw Problem(description: "has no \"strategy\"; use one of \(Strategy.names).")
    } catch DecodingError.keyNotFound(let missing, let context) where context.codingPath.isEmpty {
      throw Problem(description: "has no \"\(missing.stringValue)\".")
    } catch DecodingError.keyNotFound(let missing, let context) {
      throw Problem(
        description: "has no \"\(key(context.codingPath + [missing]))\"; \"data\" needs both \"attributes\" and \"partition\".")
    } catch DecodingError.dataCorrupted(let context) where key(context.codingPath) == "strategy" {
      throw Problem(description: context.debugDescription)
    } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
      throw Problem(description: "\"\(key(context.codingPath))\" has a value of the wrong kind (\(context.debugDescription)).")
    } catch {
      throw Problem(description: "is not a JSON object of the run-directory contract (\(error.localizedDescription)).")
    }
    if file.updatedParameters < 0 {
      throw Problem(description: "\"updated_parameters\" is \(file.updatedParameters); it cannot be negative.")
    }
    if file.updatedBuffers < 0 {
      throw Problem(description: "\"updated_buffers\" is \(file.updatedBuffers); it cannot be negative.")
    }
    if !(file.trainingSeconds >= 0) {
      throw Problem(description: "\"training_seconds\" is \(file.trainingSeconds); it cannot be negative.")
    }
    return file
  }

  private static func key(_ path: [CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }

  private static func describe(_ type: Any.Type) -> String {
    switch type {
    case is Int.Type: "a non-negative integer"
    case is Double.Type: "a non-negative number"
    case is String.Type, is Strategy.Type: "a string"
    default: "an object with \"attributes\" and \"partition\" paths"
    }
  }
}

extension Strategy {
  /// A strategy name from JSON; an unknown one says which names there are.
  public init(from decoder: Decoder) throws {
    let container = try decoder.singleValueContainer()
    let name = try container.decode(String.self)
    guard let strategy = Strategy(rawValue: name) else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: decoder.codingPath, debugDescription: "strategy \"\(name)\" is not one of \(Strategy.names)."))
    }
    self = strategy
  }
}

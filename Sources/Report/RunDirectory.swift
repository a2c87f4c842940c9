// The run-directory contract: what a training run leaves behind for `fairtune report`.
import CelebAFormat
import Experiment
import Fairness
import Foundation

/// One run directory, as written by the trainer and read by `fairtune report`:
///
/// `RUN/run.json`: a `RunFile` (Experiment), whose `data`, when present, names the dataset's
/// CelebA-format attribute and partition files (relative paths are relative to RUN);
/// `fairtune report --attributes/--partition` override it and are required when a run has none.
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
  /// bn-recal: the attribute whose groups its statistics weigh equally.
  public let bnBalance: String?
  /// What the products multiplied: fp32 (also for runs that do not say) or bf16-emulated.
  public let precision: String
  /// Whether the head was solved to convergence (L-BFGS) rather than trained by its optimizer.
  public let convergedHead: Bool

  /// The strategy as tables name it: "bn-recal balanced on Male" for a balanced recalibration.
  public var variant: String { strategy.rawValue + (bnBalance.map { " balanced on \($0)" } ?? "") }

  /// The name in tables: the variant, and for a solved head, so.
  public var name: String { variant + (convergedHead ? ", converged head" : "") }

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
    attributesFile: URL? = nil, partitionFile: URL? = nil, bnBalance: String? = nil, precision: String = "fp32", convergedHead: Bool = false
  ) {
    self.directory = directory
    self.strategy = strategy
    self.updatedParameters = updatedParameters
    self.updatedBuffers = updatedBuffers
    self.trainingSeconds = trainingSeconds
    self.attributesFile = attributesFile
    self.partitionFile = partitionFile
    self.bnBalance = bnBalance
    self.precision = precision
    self.convergedHead = convergedHead
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
    let contents: RunFile
    do {
      contents = try RunFile.decode(data)
    } catch let problem as RunFile.Problem {
      throw InputError(file: name, line: nil, problem.description)
    }
    self.init(
      directory: directory, strategy: contents.strategy, updatedParameters: contents.updatedParameters,
      updatedBuffers: contents.updatedBuffers, trainingSeconds: contents.trainingSeconds,
      attributesFile: contents.data.map { Self.resolve($0.attributes, in: directory) },
      partitionFile: contents.data.map { Self.resolve($0.partition, in: directory) }, bnBalance: contents.bnBalance,
      precision: contents.precision ?? "fp32", convergedHead: contents.head == HeadName.converged)
  }

  /// run.json's name of a solved head.
  enum HeadName { static let converged = "converged" }

  /// run.json for this record, as the trainer writes it.
  public func json() throws -> Data {
    var data: RunFile.DataFiles?
    if let attributesFile, let partitionFile {
      data = RunFile.DataFiles(attributes: attributesFile.path, partition: partitionFile.path)
    }
    return try RunFile(
      strategy: strategy, updatedParameters: updatedParameters, updatedBuffers: updatedBuffers, trainingSeconds: trainingSeconds,
      bnBalance: bnBalance, precision: precision, data: data, head: convergedHead ? HeadName.converged : nil
    ).encoded()
  }

  /// An absolute path as it is, a relative one from inside the run directory.
  private static func resolve(_ path: String, in directory: URL) -> URL {
    let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
    return url.standardizedFileURL
  }
}

// The jobs the command line and reproduce build: a sweep trial's settings become the same run
// options a command line would give, and pretraining then fine-tuning through the library (what
// reproduce does, no argument parser involved) leave a resumable run with scores and run.json.
import CelebAFormat
import Data
import Distributed
import Experiment
import Foundation
import NN
import Training
import XCTest

final class JobTests: XCTestCase {
  func testTrialSpecCarriesEveryDrawnSetting() throws {
    // As the sweep's journal records a trial.
    let trial = try JSONDecoder().decode(TrialSettings.self, from: Data("""
      {"strategy": "bn-stats", "optimizer": "adam", "learning_rate": 0.00123, "schedule": "onecycle",
       "weight_decay": 4.5e-5, "epochs": 3, "warmup_epochs": 1, "seed": 77}
      """.utf8))
    let spec = TrainingSpec.trial(trial, data: "d", out: "o", batch: 32)
    XCTAssertEqual(spec.defining["optimizer"], "adam")
    XCTAssertEqual(spec.defining["lr"], "0.00123")
    XCTAssertEqual(spec.defining["weight-decay"], "4.5e-05")
    XCTAssertEqual(spec.defining["schedule"], "onecycle")
    XCTAssertEqual(spec.defining["epochs"], "3")
    XCTAssertEqual(spec.defining["warmup-epochs"], "1.0")
    XCTAssertEqual(spec.defining["seed"], "77")
    XCTAssertEqual(spec.defining["batch"], "32")
    // Another seed for the same settings (reproduce's seed runs) changes only the seed.
    let again = TrainingSpec.trial(trial, data: "d", out: "o", batch: 32, seed: 1077)
    XCTAssertEqual(again.defining.filter { $0.key != "seed" }, spec.defining.filter { $0.key != "seed" })
    XCTAssertEqual(again.seed, 1077)

    let run = spec.runSettings(learningRate: trial.learningRate, pretraining: false, loaderThreads: 1, parallel: DataParallelSettings())
    XCTAssertEqual(run.optimizer.kind, "adam")
    XCTAssertEqual(run.optimizer.learningRate, Float(0.00123))
    XCTAssertEqual(run.optimizer.weightDecay, Float(4.5e-5))
    XCTAssertEqual(run.optimizer.classifierScale, TrainingSpec.adamClassifierScale)
    XCTAssertEqual(run.schedule as ScheduleKind, .onecycle)
    XCTAssertEqual(run.epochs, 3)
    // Without an optimizer or weight decay, the defaults of pretraining and fine-tuning differ.
    let plain = TrainingSpec(data: "d", out: "o")
    let pretraining = plain.runSettings(learningRate: 0.3, pretraining: true, loaderThreads: 1, parallel: DataParallelSettings())
    let fineTuning = plain.runSettings(learningRate: 1, pretraining: false, loaderThreads: 1, parallel: DataParallelSettings())
    XCTAssertEqual(pretraining.optimizer.kind, "lars")
    XCTAssertEqual(pretraining.optimizer.weightDecay, 1e-6)
    XCTAssertEqual(pretraining.optimizer.classifierScale, 1)
    XCTAssertEqual(fineTuning.optimizer.kind, "sgd")
    XCTAssertEqual(fineTuning.optimizer.weightDecay, 0)
  }

  func testPretrainThenFineTuneThroughTheLibrary() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-jobs-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let plan = SynthesisPlan(train: 50, validation: 16, test: 16, imageSize: 16, seed: 3)
    let raw = try OutputDirectory(root.appendingPathComponent("raw"), option: "--out")
    try Synthesizer.write(plan, labels: try Synthesizer.labels(plan, from: nil), into: raw) { _ in }
    try raw.commit()
    let packedURL = root.appendingPathComponent("packed")
    let packed = try OutputDirectory(packedURL, option: "--out")
    _ = try Packer.pack(celebA: root.appendingPathComponent("raw"), imageSize: 16, into: packed, skipBadImages: false)
    try packed.commit()

    let world = LocalCommunicator()
    let dataset = try TrainingSession.open(packedURL.path, imageSize: 16, run: root.path, communicator: world)
    let model = ModelSpec(model: "resnet18", width: 0.25, stem: "small", imageSize: 16)

    var pretrainSpec = TrainingSpec(data: packedURL.path, out: root.appendingPathComponent("pretrain").path)
    pretrainSpec.batch = 16
    pretrainSpec.loaderThreads = 1
    var pretrain = PretrainJob(spec: pretrainSpec, model: model)
    pretrain.projectionDimension = 8
    let pretrainSession = try TrainingSession(communicator: world, dataset: dataset, spec: pretrainSpec, defining: pretrain.defining)
    let trained = try XCTUnwrap(try pretrain.run(in: pretrainSession))
    // 50 images at batch 16: SimCLR drops the epoch's last 2 images.
    XCTAssertEqual(trained.step, 3)
    // The monitor measured the initial backbone and the end of the epoch.
    let monitored = try metricsRecords(pretrainSpec.out).filter { $0["knn_mean_f1"] != nil }
    XCTAssertEqual(monitored.map { $0["step"] as? Int }, [0, 3])
    for record in monitored {
      let value = try XCTUnwrap((record["knn_mean_f1"] as? NSNumber)?.doubleValue)
      XCTAssertTrue(value > 0 && value <= 1, "\(value)")
    }
    let checkpoint = pretrainSession.run.finalCheckpoint
    XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint))

    var spec = TrainingSpec(data: packedURL.path, out: root.appendingPathComponent("bn-stats").path)
    spec.batch = 16
    spec.loaderThreads = 1
    let job = FineTuneJob(strategy: .bnStats, spec: spec, model: model, pretrained: try PretrainedBackbone.read(checkpoint))
    let network = try job.makeModel()
    // The backbone is the pretrained one: its stem BatchNorm's weights are the checkpoint's
    // (which pretraining moved away from their initial ones).
    let saved = try XCTUnwrap(try Checkpoint.read(checkpoint).tensors.first { $0.name == "bn1.weight" })
    let loaded = try XCTUnwrap(network.registry.parameters.first { $0.name == "bn1.weight" })
    XCTAssertEqual(Array(UnsafeBufferPointer(start: loaded.value, count: loaded.count)), saved.values)
    XCTAssertNotEqual(saved.values, [Float](repeating: 1, count: saved.values.count))

    let session = try TrainingSession(communicator: world, dataset: dataset, spec: spec, defining: job.defining)
    let first = try job.run(network, in: session)
    XCTAssertTrue(first.f1.isFinite)
    let record = try RunFile.decode(try Data(contentsOf: URL(fileURLWithPath: spec.out + "/run.json")))
    XCTAssertEqual(record.strategy, .bnStats)
    XCTAssertEqual(record.updatedParameters, Strategy.bnStats.updatedCounts(network).parameters)
    // A Double through JSON (printed to round-trip): equal to ~1e-16.
    XCTAssertEqual(try XCTUnwrap(record.validationMeanF1), first.f1, accuracy: 1e-12)
    // Fine-tuning keeps the partial batch: 4 steps.
    XCTAssertEqual(try metricsRecords(spec.out).filter { $0["lr"] != nil }.count, 4)
    let testScores = try String(contentsOfFile: spec.out + "/scores-test.csv", encoding: .utf8)
    XCTAssertEqual(testScores.split(separator: "\n").count, 1 + 16)

    // Run again: the finished run is read back, not trained again.
    let reopened = try TrainingSession(communicator: world, dataset: dataset, spec: spec, defining: job.defining)
    let second = try job.run(try job.makeModel(), in: reopened)
    XCTAssertEqual(second.f1, first.f1)
    // Read back from run.json: the same Double to ~1e-16 of a few seconds.
    XCTAssertEqual(second.seconds, first.seconds, accuracy: 1e-9)

    // The same directory with other options is refused, naming the option.
    var other = job
    other.spec.seed = 5
    XCTAssertThrowsError(try TrainingSession(communicator: world, dataset: dataset, spec: other.spec, defining: other.defining)) {
      XCTAssertTrue("\($0)".contains("seed"), "\($0)")
    }
  }

  func metricsRecords(_ run: String) throws -> [[String: Any]] {
    try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
      try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
  }
}

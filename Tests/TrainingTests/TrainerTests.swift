// The training loop on generated batches: the loss falls, and a resumed run ends bit-identical
// to an uninterrupted one.
import Data
import Distributed
import Foundation
import NN
import Support
import Tensors
import TestSupport
import Training
import XCTest

/// Batches generated from (epoch, step): what a deterministic loader gives.
final class GeneratedBatches: BatchSource {
  let imageSize = 8
  let stepsPerEpoch = 3
  let count: Int
  let views: Int
  let images: Tensor
  let labels: Tensor
  var waitSeconds = 0.0
  /// Reported as the step's global batch (a partial last batch when below the plan's).
  var globalCount: Int?

  init(count: Int, views: Int = 1) {
    self.count = count
    self.views = views
    images = Tensor(shape: [views * count, 8, 8, 3])
    labels = Tensor(shape: [count, 40])
  }

  func batch(epoch: Int, step: Int) throws -> TrainingBatch {
    var rng = SplitMix64(seed: UInt64(epoch * 100 + step))
    for n in 0..<count {
      let target = Float(n % 2)
      for k in 0..<40 { labels.data[n * 40 + k] = k % 3 == 0 ? target : Float(k % 2) }
      for v in 0..<views {
        let image = images.data + (v * count + n) * 192
        for i in 0..<192 { image[i] = rng.normal() * 0.5 + (target - 0.5) * Float(i % 3) }
      }
    }
    return TrainingBatch(images: images.data, labels: views == 1 ? labels.data : nil, count: count, globalCount: globalCount)
  }
}

final class TrainerTests: XCTestCase {
  func runPath(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-trainer-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: path)
    return path
  }

  func trainer(_ path: String, objective: Objective = .attributes, epochs: Int = 3, planBatch: Int = 6, partial: Bool = false) throws -> Trainer {
    let simclr = objective != .attributes
    let model = try ResNet(ResNetConfiguration(
      depth: .resnet18, stem: .small, width: 0.0625, classes: simclr ? nil : 40,
      projection: simclr ? ProjectionSize(hidden: 16, output: 8) : nil), seed: 3)
    let optimizer = OptimizerSettings(kind: .sgd, learningRate: 0.05, momentum: 0.9).make(model.registry.parameters { $0.requiresGradient })
    let source = GeneratedBatches(count: 6, views: simclr ? 2 : 1)
    if partial { source.globalCount = 6 }
    let plan = TrainingPlan(epochs: epochs, maxSteps: nil, globalBatch: planBatch, checkpointEvery: 2, keep: 10)
    let run = try RunDirectory(path: path, options: ["model": "resnet18"])
    let t = Trainer(
      step: .single(model, objective: objective, optimizer: optimizer),
      schedule: Schedule(kind: .cosine, baseLearningRate: 0.05, totalSteps: epochs * 3, warmupSteps: 2), source: source, run: run, plan: plan,
      metadata: ["strategy": "full"])
    t.logger = Log.silent
    return t
  }

  func losses(_ run: String) throws -> [Double] {
    let text = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
    return text.split(separator: "\n").compactMap {
      (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double
    }
  }

  func testResumedRunEndsBitIdentical() throws {
    let whole = runPath("whole")
    try trainer(whole).train()
    let expected = try Checkpoint.read(whole + "/final.ckpt")

    // The same run, "killed" after its step-4 checkpoint: later files removed, then re-run.
    let broken = runPath("broken")
    try trainer(broken).train()
    try FileManager.default.removeItem(atPath: broken + "/final.ckpt")
    try FileManager.default.removeItem(atPath: broken + "/checkpoints/" + RunDirectory.checkpointName(step: 6))
    try FileManager.default.removeItem(atPath: broken + "/checkpoints/" + RunDirectory.checkpointName(step: 8))
    // And a damaged newer one, which must be skipped with a warning.
    try Data("FTCKPT01garbage".utf8).write(to: URL(fileURLWithPath: broken + "/checkpoints/" + RunDirectory.checkpointName(step: 7)))
    let resumed = try trainer(broken)
    let log = CapturedLog()
    resumed.logger = log.logger
    try resumed.resume()
    XCTAssertEqual(resumed.step, 4)
    let warnings = log.lines.filter { $0.level == .warning }.map(\.message)
    XCTAssertTrue(warnings.contains { $0.contains("skipping") && $0.contains("step-000000007") }, "\(log.lines)")
    XCTAssertEqual(try resumed.train(), 5)
    let got = try Checkpoint.read(broken + "/final.ckpt")
    for t in expected.tensors {
      XCTAssertEqual(got.tensor(t.name)?.values, t.values, "\(t.name) differs after resume")
    }
    let curve = try losses(whole)
    // Any fall: the same few images again and again, so training must lower their loss (by
    // about an eighth here).
    XCTAssertGreaterThan(curve.first!, curve.last!, "loss should fall: \(curve)")
  }

  /// The last step of an epoch may hold fewer images than the plan's batch: its loss (BCE mean,
  /// NT-Xent positives and normaliser) must be that of those images, exactly as if the plan's
  /// batch were that size.
  func testPartialLastBatchIsTrainedAsItsOwnSize() throws {
    for objective in [Objective.attributes, .simclr(temperature: 0.5)] {
      let full = runPath("batch6")
      try trainer(full, objective: objective, epochs: 1).train()
      let partial = runPath("batch10-partial")
      try trainer(partial, objective: objective, epochs: 1, planBatch: 10, partial: true).train()
      XCTAssertEqual(try losses(partial), try losses(full), "\(objective)")
    }
  }

  func testSimCLRLossFallsAndCountsPositives() throws {
    let run = runPath("simclr")
    let t = try trainer(run, objective: .simclr(temperature: 0.5), epochs: 4)
    try t.train()
    let values = try losses(run)
    XCTAssertEqual(values.count, 12)
    // Any fall, over three steps' sums (one step's loss alone is noisy): about a fifth here.
    XCTAssertLessThan(values.suffix(3).reduce(0, +), values.prefix(3).reduce(0, +), "\(values)")
    let text = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
    XCTAssertTrue(text.contains("contrastive_top1"))
  }

  func testRunMadeWithOtherOptionsIsRefused() throws {
    let path = runPath("options")
    _ = try RunDirectory(path: path, options: ["model": "resnet18", "batch": "64"])
    XCTAssertThrowsError(try RunDirectory(path: path, options: ["model": "resnet18", "batch": "32"])) { error in
      XCTAssertTrue("\(error)".contains("--batch 64"), "\(error)")
    }
  }
}

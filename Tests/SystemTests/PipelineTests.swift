// The training commands end to end on a small synthetic dataset: SimCLR over 1, 2 and 3 ranks,
// resume after kill -9 (1 and 2 ranks), and sweeps that are killed, resumed and hit a
// diverging trial.
import Foundation
import Tensors
import TestSupport
import XCTest

final class PipelineTests: XCTestCase {
  /// A packed synthetic dataset made once for the suite.
  static let data: String = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-pipeline-\(getpid())")
    try? FileManager.default.removeItem(at: dir)
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let raw = dir.appendingPathComponent("raw").path
    let packed = dir.appendingPathComponent("packed").path
    _ = try? Harness.run(Harness.binary, ["synth", "--out", raw, "--train", "480", "--val", "96", "--test", "96", "--image-size", "24", "--seed", "3"])
    _ = try? Harness.run(Harness.binary, ["pack", "--celeba", raw, "--image-size", "16", "--out", packed])
    return packed
  }()

  let model = ["--model", "resnet18", "--width", "0.0625", "--stem", "small", "--image-size", "16", "--threads", "1"]

  func path(_ name: String) -> String {
    let p = (Self.data as NSString).deletingLastPathComponent + "/" + name
    try? FileManager.default.removeItem(atPath: p)
    return p
  }

  func testSimCLRLossAndGradientsAgreeOverRankCounts() throws {
    var dumps: [SafeTensors] = []
    for ranks in [1, 2, 3] {
      let dump = path("grad-np\(ranks).safetensors")
      let result = try Harness.mpi(ranks, ["pretrain", "--data", Self.data, "--out", path("pre-np\(ranks)"), "--batch", "30",
        "--steps", "1", "--debug-gradients", dump] + model)
      XCTAssertEqual(result.status, 0, result.output)
      dumps.append(try SafeTensors(contentsOf: dump))
    }
    for (index, other) in dumps.dropFirst().enumerated() {
      let loss = try relativeError(dumps[0].floats("loss"), other.floats("loss"))
      var worst: (Float, String) = (0, "")
      for name in dumps[0].names where name.hasPrefix("grad.") {
        let r = relativeError(try dumps[0].floats(name), try other.floats(name))
        if r > worst.0 { worst = (r, name) }
      }
      print(String(format: "SimCLR, global negatives, np 1 vs np %d: loss %.1e, gradients %.1e (worst %@)", index + 2, loss, worst.0, worst.1))
      // One step from the same weights: the loss's sums and the gradients' (synchronized
      // BatchNorm, NT-Xent over gathered negatives) differ only in order, a few 2^-24 for the
      // loss; training-mode BatchNorm grows the gradients' rounding as in the float64 fixtures
      // (up to 1000 x 2^-24 = 6e-5 there, at 4 channels and 2 images). Measured 4.9e-6 to 8.9e-6
      // on five OpenBLAS cores.
      XCTAssertLessThan(loss, 1e-5)
      XCTAssertLessThan(worst.0, 5e-5, worst.1)
    }
  }

  /// Runs `arguments` under `ranks` ranks, kills every process of the run with SIGKILL once its
  /// second checkpoint exists, then runs it again to the end.
  func killAndResume(_ arguments: [String], out: String, ranks: Int) throws {
    let process = try Harness.background(ranks, arguments)
    let second = out + "/checkpoints/step-000000004.ckpt"
    let start = Clock.now()
    while !FileManager.default.fileExists(atPath: second) && process.isRunning && Clock.now() - start < 120 { usleep(2000) }
    XCTAssertTrue(process.isRunning, "the run ended before it could be killed")
    _ = try Harness.run("/usr/bin/pkill", ["-9", "-f", out])
    process.waitUntilExit()
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/final.ckpt"))
    let again = try Harness.mpi(ranks, arguments)
    XCTAssertEqual(again.status, 0, again.output)
    XCTAssertTrue(again.output.contains("resuming"), again.output)
  }

  func testKilledFinetuneResumesBitIdentical() throws {
    let pretrain = path("pre-for-finetune")
    XCTAssertEqual(try Harness.run(Harness.binary, ["pretrain", "--data", Self.data, "--out", pretrain, "--batch", "32", "--steps", "2"] + model).status, 0)
    // fp32 on 1 and 2 ranks, and bfloat16 (emulated) on 2: its rounding is as deterministic.
    for (strategy, ranks, precision) in [("bn-stats-skip", 1, "fp32"), ("bn-stats-skip", 2, "fp32"), ("bn-stats-skip", 2, "bf16-emulated")] {
    do {
      let whole = path("ft-whole-\(strategy)-np\(ranks)-\(precision)")
      let killed = path("ft-killed-\(strategy)-np\(ranks)-\(precision)")
      let common = ["finetune", "--data", Self.data, "--from", pretrain + "/final.ckpt", "--strategy", strategy,
        "--batch", "16", "--epochs", "3", "--checkpoint-every", "2", "--precision", precision] + model
      XCTAssertEqual(try Harness.mpi(ranks, common + ["--out", whole]).status, 0)
      try killAndResume(common + ["--out", killed], out: killed, ranks: ranks)
      let a = try Harness.tensors(ofCheckpoint: whole + "/final.ckpt")
      let b = try Harness.tensors(ofCheckpoint: killed + "/final.ckpt")
      XCTAssertEqual(a.count, b.count)
      var identical = 0
      for (name, values) in a {
        XCTAssertEqual(values, b[name], "\(strategy), np \(ranks), \(precision): \(name) differs after kill -9 and resume")
        if values == b[name] { identical += 1 }
      }
      print("\(strategy), \(precision): kill -9 after the second checkpoint and resume, np \(ranks): \(identical) of \(a.count) tensors bit-identical to the uninterrupted run")
    }
    }
  }

  /// frozen with --head converged solves its head on the feature table in one go (no checkpoint to resume from): the
  /// solve converges, and its head agrees on 1 and 2 ranks (rank 0 solves; the table's rows can
  /// differ in their last bits between rank counts, see FeatureCacheTests).
  func testFrozenHeadIsSolvedToConvergenceOnAnyRankCount() throws {
    let pretrain = path("pre-for-frozen")
    XCTAssertEqual(try Harness.run(Harness.binary, ["pretrain", "--data", Self.data, "--out", pretrain, "--batch", "32", "--steps", "2"] + model).status, 0)
    var losses: [Double] = []
    for ranks in [1, 2] {
      let out = path("frozen-np\(ranks)")
      let result = try Harness.mpi(ranks, ["finetune", "--data", Self.data, "--from", pretrain + "/final.ckpt", "--strategy", "frozen",
        "--head", "converged", "--batch", "16", "--weight-decay", "1e-3", "--out", out] + model)
      XCTAssertEqual(result.status, 0, result.output)
      XCTAssertTrue(result.output.contains("(converged"), result.output)
      let metrics = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
      let fit = try XCTUnwrap(
        metrics.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
          .first { $0["head_fit"] != nil })
      XCTAssertEqual(fit["converged"] as? Bool, true, "\(fit)")
      losses.append(try XCTUnwrap(fit["loss"] as? Double))
    }
    // The same convex problem on the two tables (equal to their last bits): the same minimum.
    // Each solve stops at a gradient below 1e-6, ~1e-12 / lambda above it, and evaluates its
    // loss from fp32 logits (~1e-7 relative): 1e-6 of the loss covers both.
    XCTAssertEqual(losses[0], losses[1], accuracy: 1e-6 * losses[0], "the solved loss differs between 1 and 2 ranks")
  }

  func trials(_ sweep: String) throws -> [[String]] {
    let text = try String(contentsOfFile: sweep + "/trials.csv", encoding: .utf8)
    return text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
  }

  func testSweepKilledMidwayEndsWithExactlyNTrials() throws {
    let pretrain = path("pre-for-sweep")
    XCTAssertEqual(try Harness.run(Harness.binary, ["pretrain", "--data", Self.data, "--out", pretrain, "--batch", "32", "--steps", "2"] + model).status, 0)
    let sweep = path("sweep-killed")
    let arguments = ["sweep", "--data", Self.data, "--from", pretrain + "/final.ckpt", "--strategies", "frozen,bn-stats",
      "--trials", "3", "--max-epochs", "2", "--batch", "32", "--seed", "5", "--out", sweep] + model
    let process = try Harness.background(3, arguments)
    let start = Clock.now()
    func finished() -> Int { ((try? trials(sweep)) ?? []).filter { $0.count > 2 && $0[2] == "finished" }.count }
    while finished() < 2 && process.isRunning && Clock.now() - start < 300 { usleep(20_000) }
    XCTAssertTrue(process.isRunning, "the sweep ended before it could be killed")
    let before = finished()
    _ = try Harness.run("/usr/bin/pkill", ["-9", "-f", sweep])
    process.waitUntilExit()
    let again = try Harness.mpi(3, arguments, limit: 600)
    XCTAssertEqual(again.status, 0, again.output)
    let rows = try trials(sweep)
    for strategy in ["frozen", "bn-stats"] {
      let mine = rows.filter { $0[1] == strategy }
      XCTAssertEqual(mine.filter { $0[2] == "finished" }.count, 3, strategy)
      XCTAssertEqual(Set(mine.map { $0[0] }).count, mine.count, "\(strategy): a trial twice")
    }
    print("sweep killed with SIGKILL after \(before) finished trials; after the re-run: \(rows.filter { $0[2] == "finished" }.count) finished (3 per strategy), \(rows.count) rows")
  }

  func testDivergingTrialIsRecordedFailedAndReplaced() throws {
    let space = path("diverging.json")
    try #"{"optimizers": {"sgd": [1e6, 1e6]}, "schedules": ["cosine"], "zero_weight_decay": 1}"#.write(toFile: space, atomically: true, encoding: .utf8)
    let sweep = path("sweep-diverging")
    let result = try Harness.run(Harness.binary, ["sweep", "--data", Self.data, "--strategies", "supervised", "--trials", "1",
      "--max-failures", "2", "--max-epochs", "1", "--batch", "32", "--space", space, "--out", sweep] + model)
    // Every trial failed, so the sweep ends with status 1 and says which strategy has nothing.
    XCTAssertEqual(result.status, 1, result.output)
    XCTAssertTrue(result.output.contains("no finished trial for supervised"), result.output)
    let rows = try trials(sweep)
    XCTAssertEqual(rows.count, 3, "\(rows)")
    XCTAssertTrue(rows.allSatisfy { $0[2] == "failed" }, "\(rows)")
    XCTAssertTrue(rows[0].last!.contains("diverged"), "\(rows[0])")
    XCTAssertTrue(result.output.contains("supervised 0 finished"), result.output)
  }

  /// ASHA over MPI: a coordinator and one group of two ranks (so every rung decision must reach
  /// both ranks of the group). Every trial draws all 3 epochs; lagging ones are stopped at the
  /// rungs, all are complete, and the stopped ones trained fewer epochs.
  func testAshaStopsTrialsAcrossAGroupOfTwo() throws {
    let space = path("asha-space.json")
    try #"{"optimizers": {"sgd": [1e-3, 1.0]}, "min_epochs": 3}"#.write(toFile: space, atomically: true, encoding: .utf8)
    let sweep = path("sweep-asha")
    let result = try Harness.mpi(3, ["sweep", "--data", Self.data, "--strategies", "supervised", "--trials", "4", "--group-size", "2",
      "--max-epochs", "3", "--batch", "32", "--seed", "2", "--space", space, "--scheduler", "asha", "--asha-eta", "2",
      "--threshold-images", "96", "--out", sweep] + model)
    XCTAssertEqual(result.status, 0, result.output)
    let rows = try trials(sweep)
    XCTAssertEqual(rows.count, 4, "\(rows)")
    XCTAssertTrue(rows.allSatisfy { $0[2] == "finished" || $0[2] == "stopped" }, "\(rows)")
    let stopped = rows.filter { $0[2] == "stopped" }
    XCTAssertFalse(stopped.isEmpty, "no trial was stopped: \(rows)")
    // Column 14 is epochs_run.
    XCTAssertTrue(stopped.allSatisfy { Int($0[14])! < 3 }, "\(stopped)")
    XCTAssertTrue(rows.filter { $0[2] == "finished" }.allSatisfy { Int($0[14]) == 3 }, "\(rows)")
    print("ASHA over a group of two: \(stopped.count) of 4 trials stopped at rungs (epochs run: \(rows.map { $0[14] }.joined(separator: ", ")))")
  }
}

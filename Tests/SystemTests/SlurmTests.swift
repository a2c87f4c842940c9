// The sbatch scripts under a real Slurm (`cluster/slurm/local.sh up`): pretraining submitted,
// requeued mid-run with `scontrol requeue` and resumed to the same final weights as an
// uninterrupted run; and the whole tiny pipeline submitted as one job. Skipped when no Slurm
// answers (scripts/test.sh starts one when it can).
import Foundation
import Tensors
import XCTest

final class SlurmTests: XCTestCase {
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

  var directory: String!
  /// Jobs this test submitted; cancelled on the way out so that none holds the node for the next.
  var jobs: [String] = []

  override func setUpWithError() throws {
    let sinfo = try? Harness.run("/usr/bin/env", ["sinfo", "-h", "-o", "%t"], limit: 20)
    guard let sinfo, sinfo.status == 0, sinfo.output.contains("idle") || sinfo.output.contains("mix") || sinfo.output.contains("alloc") else {
      throw XCTSkip("no Slurm answers here (start one with `cluster/slurm/local.sh up`)")
    }
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-slurm-\(getpid())-\(name.count)").path
    try? FileManager.default.removeItem(atPath: directory)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    for job in jobs { _ = try? Harness.run("/usr/bin/env", ["scancel", job], limit: 20) }
    if let directory { try? FileManager.default.removeItem(atPath: directory) }
  }

  /// Submits `script` with `options` and the environment; returns the job id.
  func submit(_ script: String, options: [String], environment: [String: String], arguments: [String]) throws -> String {
    let exports: [String] = environment.map { "\($0.key)=\($0.value)" }.sorted()
    var command: [String] = exports + ["sbatch", "--parsable", "--chdir", directory]
    command += options
    command.append(Self.repository + "/cluster/slurm/" + script)
    command += arguments
    let result = try Harness.run("/usr/bin/env", command, limit: 30)
    XCTAssertEqual(result.status, 0, result.output)
    let id: String = result.output.trimmingCharacters(in: CharacterSet.whitespacesAndNewlines)
    let job = id.split(separator: ";").first.map(String.init) ?? ""
    jobs.append(job)
    return job
  }

  /// The job's state (RUNNING, COMPLETED, FAILED, ...) and exit code, from scontrol.
  func state(_ job: String) throws -> (state: String, exitCode: String, reason: String) {
    let result = try Harness.run("/usr/bin/env", ["scontrol", "show", "job", job, "-o"], limit: 20)
    func field(_ name: String) -> String {
      result.output.split(separator: " ").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } ?? "?"
    }
    return (field("JobState"), field("ExitCode"), field("Reason"))
  }

  /// Waits until `condition` holds for the job's state, at most `limit` seconds.
  @discardableResult
  func wait(_ job: String, limit: Double, until condition: (String) -> Bool) throws -> (state: String, exitCode: String, reason: String) {
    let start = Clock.now()
    var last = try state(job)
    while !condition(last.state) && Clock.now() - start < limit {
      usleep(250_000)
      last = try state(job)
    }
    return last
  }

  /// Waits until a requeued job is pending again and the node holds nothing of its first start
  /// (no completing flag, no process of the job), then until the clock's second has turned:
  /// Slurm's credentials carry whole seconds, and a new one made in the second of the
  /// revocation counts as revoked.
  func waitUntilTheNodeIsDone(with job: String, limit: Double = 120) throws {
    let start = Clock.now()
    var waits: [String] = []
    while Clock.now() - start < limit {
      let state = try Harness.run("/usr/bin/env", ["squeue", "-h", "-j", job, "-o", "%T"], limit: 20).output
        .trimmingCharacters(in: .whitespacesAndNewlines)
      // `listpids` asks slurmd on this node; it fails once no step of the job is left there.
      let pids = try Harness.run("/usr/bin/env", ["scontrol", "listpids", job], limit: 20)
      let processes = pids.status == 0 ? pids.output.split(separator: "\n").dropFirst().filter { !$0.isEmpty }.count : 0
      if state == "PENDING" && processes == 0 {
        let second = time(nil)
        while time(nil) <= second { usleep(50_000) }
        print(String(format: "Slurm: job %@ requeued: node clean after %.1f s (%@)", job, Clock.now() - start, waits.suffix(3).joined(separator: "; ")))
        return
      }
      waits.append("\(state.isEmpty ? "?" : state), \(processes) process(es)")
      usleep(200_000)
    }
    XCTFail("job \(job) still held the node \(Int(limit)) s after the requeue: \(waits.suffix(5).joined(separator: "; "))")
  }

  static let finalStates: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"]

  func dataset(images: Int, size: Int) throws -> String {
    let raw = directory + "/raw"
    let packed = directory + "/packed"
    XCTAssertEqual(try Harness.run(Harness.binary, ["synth", "--out", raw, "--train", "\(images)", "--val", "32", "--test", "32", "--image-size", "\(size)", "--seed", "4"]).status, 0)
    XCTAssertEqual(try Harness.run(Harness.binary, ["pack", "--celeba", raw, "--image-size", "\(size)", "--out", packed]).status, 0)
    return packed
  }

  func testPretrainSubmittedRequeuedAndResumed() throws {
    let packed = try dataset(images: 192, size: 32)
    let options = ["--batch", "32", "--epochs", "30", "--checkpoint-every", "10", "--seed", "3",
      "--model", "resnet18", "--width", "0.25", "--stem", "small", "--image-size", "32"]
    let reference = try Harness.mpi(2, ["pretrain", "--data", packed, "--out", directory + "/reference", "--threads", "1"] + options, limit: 600)
    XCTAssertEqual(reference.status, 0, reference.output)

    let environment = ["FAIRTUNE": Harness.binary, "FAIRTUNE_DATA": packed, "FAIRTUNE_RUNS": directory + "/runs", "FAIRTUNE_RUN": "requeued"]
    let job = try submit("pretrain.sbatch", options: ["-n", "2", "--cpus-per-task", "1"], environment: environment, arguments: options)
    let run = directory + "/runs/requeued"
    // Requeue once the run has a checkpoint and before it ends.
    let start = Clock.now()
    var checkpoints: [String] = []
    while Clock.now() - start < 300 {
      checkpoints = (try? FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints"))?.filter { $0.hasSuffix(".ckpt") } ?? []
      if !checkpoints.isEmpty { break }
      if Self.finalStates.contains(try state(job).state) { break }
      usleep(100_000)
    }
    XCTAssertFalse(checkpoints.isEmpty, "no checkpoint appeared; job \(job) is \((try? state(job)).map { "\($0.state) (reason \($0.reason))" } ?? "unknown")")
    XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/final.ckpt"), "the job ended before it could be requeued; give it more epochs")
    let requeue = try Harness.run("/usr/bin/env", ["scontrol", "requeue", job], limit: 30)
    XCTAssertEqual(requeue.status, 0, requeue.output)
    let requeuedAt = Clock.now() - start
    // Slurm holds a requeued job back (its begin time moves on by the credential lifetime) so
    // that the node can finish with the first start: the requeue revokes the job's credential as
    // of that second, and slurmd refuses ("Job credential revoked") a new start whose credential
    // is not younger. Release it early only once the node is done with the first start.
    try waitUntilTheNodeIsDone(with: job)
    _ = try Harness.run("/usr/bin/env", ["scontrol", "update", "JobId=\(job)", "StartTime=now"], limit: 30)
    let end = try wait(job, limit: 600) { Self.finalStates.contains($0) }
    XCTAssertEqual(end.state, "COMPLETED", "job \(job) ended \(end.state) \(end.exitCode) (reason \(end.reason))")
    XCTAssertEqual(end.exitCode, "0:0")
    let log = try String(contentsOfFile: directory + "/fairtune-pretrain-\(job).out", encoding: .utf8)
    XCTAssertTrue(log.contains("(restart 1)"), log)
    XCTAssertTrue(log.contains("resum"), "the requeued job did not say it resumed: \(log)")

    let a = try Harness.tensors(ofCheckpoint: directory + "/reference/final.ckpt")
    let b = try Harness.tensors(ofCheckpoint: run + "/final.ckpt")
    XCTAssertEqual(Set(a.keys), Set(b.keys))
    var identical = 0
    for (name, values) in a where values == b[name] { identical += 1 }
    XCTAssertEqual(identical, a.count, "the requeued run's weights differ from the uninterrupted run's")
    print(String(format: "Slurm: job %@ requeued %.1f s after submission (checkpoints %@), resumed and COMPLETED 0:0; %d of %d tensors bit-identical to an uninterrupted run",
      job, requeuedAt, checkpoints.sorted().joined(separator: ","), identical, a.count))
  }

  func testReproduceTinySubmittedAsOneJob() throws {
    let environment = ["FAIRTUNE": Harness.binary, "FAIRTUNE_PRESET": "tiny", "FAIRTUNE_OUT": directory + "/reproduce"]
    // Two pretraining epochs: the job's stages and ranks are what is tested here, not the backbone.
    let job = try submit("reproduce.sbatch", options: ["-n", "2", "--cpus-per-task", "1"], environment: environment, arguments: ["--pretrain-epochs", "2"])
    let end = try wait(job, limit: 900) { Self.finalStates.contains($0) }
    let log = (try? String(contentsOfFile: directory + "/fairtune-reproduce-\(job).out", encoding: .utf8)) ?? ""
    XCTAssertEqual(end.state, "COMPLETED", "job \(job) ended \(end.state) \(end.exitCode) (reason \(end.reason)): \(log.suffix(2000))")
    XCTAssertEqual(end.exitCode, "0:0")
    XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/reproduce/report/index.html"), log)
    let trials = try String(contentsOfFile: directory + "/reproduce/sweep/trials.csv", encoding: .utf8)
    XCTAssertEqual(trials.split(separator: "\n").filter { $0.contains(",finished,") }.count, 14, trials)
    print("Slurm: reproduce --preset tiny as job \(job) on 2 ranks: \(end.state) \(end.exitCode)")
  }

}

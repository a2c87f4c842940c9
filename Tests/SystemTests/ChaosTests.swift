// Chaos on ranks: a random rank (any of them, not only rank 0) of a 3-rank run is killed with
// SIGKILL at a random moment, five times per command with recorded seeds. Every time the job
// must end non-zero within the communication timeout, and re-running the same command must
// give what an uninterrupted run gives: bit-identical weights for pretrain, exactly N finished
// trials per strategy for a sweep.
import Foundation
import Support
import Tensors
import XCTest

final class ChaosTests: XCTestCase {
  let model = ["--model", "resnet18", "--width", "0.0625", "--stem", "small", "--image-size", "16", "--threads", "1"]
  /// The documented limit for survivors: --comm-timeout, plus a margin for mpirun to tear down.
  let timeout = 20.0

  func path(_ name: String) -> String {
    let p = (PipelineTests.data as NSString).deletingLastPathComponent + "/chaos-" + name
    try? FileManager.default.removeItem(atPath: p)
    return p
  }

  /// The pid of world rank `rank` among the fairtune processes whose command line holds `marker`.
  func pid(ofRank rank: Int, marker: String) -> Int32? {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
      guard let pid = Int32(entry),
        let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
        command.contains(marker), command.hasPrefix(Harness.binary),
        let environ = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
      else { continue }
      let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
      if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
    }
    return nil
  }

  struct Kill {
    let seed: UInt64
    let rank: Int
    let at: Double
    var exitSeconds = 0.0
    var status: Int32 = 0
  }

  /// Starts `arguments` on 3 ranks and kills the rank the seed picks after the delay it picks
  /// (within `window` seconds, once `ready` holds); returns what happened.
  func chaos(_ arguments: [String], marker: String, seed: UInt64, window: ClosedRange<Double>, ready: () -> Bool) throws -> Kill? {
    var generator = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x1234_5678)
    var kill = Kill(seed: seed, rank: Int(generator.uniform() * 3) % 3, at: window.lowerBound + Double(generator.uniform()) * (window.upperBound - window.lowerBound))
    let process = try Harness.background(3, arguments)
    let begin = Clock.now()
    while !ready() && process.isRunning && Clock.now() - begin < 120 { usleep(5000) }
    let readyAt = Clock.now()
    while Clock.now() - readyAt < kill.at && process.isRunning { usleep(5000) }
    guard process.isRunning, let victim = pid(ofRank: kill.rank, marker: marker) else {
      process.waitUntilExit()
      return nil  // finished before the kill: no chaos this time
    }
    Glibc.kill(victim, SIGKILL)
    let killedAt = Clock.now()
    while process.isRunning && Clock.now() - killedAt < 120 { usleep(5000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    kill.exitSeconds = Clock.now() - killedAt
    kill.status = process.terminationStatus
    return kill
  }

  func testARandomRankKilledDuringPretrain() throws {
    let options = ["--batch", "30", "--epochs", "12", "--checkpoint-every", "16", "--seed", "2", "--comm-timeout", "\(Int(timeout))"] + model
    let reference = path("pretrain-reference")
    let uninterrupted = try Harness.mpi(3, ["pretrain", "--data", PipelineTests.data, "--out", reference] + options, limit: 600)
    XCTAssertEqual(uninterrupted.status, 0, uninterrupted.output)
    let expected = try Harness.tensors(ofCheckpoint: reference + "/final.ckpt")
    var lines: [String] = []
    for seed: UInt64 in 1...5 {
      let out = path("pretrain-\(seed)")
      let arguments = ["pretrain", "--data", PipelineTests.data, "--out", out] + options
      let ready = { FileManager.default.fileExists(atPath: out + "/metrics.jsonl") }
      guard let kill = try chaos(arguments, marker: out, seed: seed, window: 0.2...2.5, ready: ready) else {
        lines.append("seed \(seed): the run finished before the kill")
        continue
      }
      XCTAssertNotEqual(kill.status, 0, "seed \(seed): the job exited 0 after rank \(kill.rank) was killed")
      // The survivors give up within the communication timeout; 10 s more is for mpirun to tear
      // the job down (the wait gives up only at 120 s).
      XCTAssertLessThan(kill.exitSeconds, timeout + 10, "seed \(seed): survivors outlived the timeout")
      let again = try Harness.mpi(3, arguments, limit: 600)
      XCTAssertEqual(again.status, 0, again.output)
      let got = try Harness.tensors(ofCheckpoint: out + "/final.ckpt")
      let identical = expected.filter { got[$0.key] == $0.value }.count
      XCTAssertEqual(identical, expected.count, "seed \(seed): the resumed weights differ")
      lines.append(String(format: "seed %d: rank %d killed %.2f s into training, job exited %d after %.2f s; re-run: %d/%d tensors bit-identical",
        seed, kill.rank, kill.at, kill.status, kill.exitSeconds, identical, expected.count))
    }
    print("chaos, pretrain on 3 ranks:\n  " + lines.joined(separator: "\n  "))
  }

  func testARandomRankKilledDuringASweep() throws {
    let pretrain = path("sweep-backbone")
    XCTAssertEqual(try Harness.run(Harness.binary, ["pretrain", "--data", PipelineTests.data, "--out", pretrain, "--batch", "32", "--steps", "2"] + model).status, 0)
    var lines: [String] = []
    for seed: UInt64 in 1...5 {
      let sweep = path("sweep-\(seed)")
      let arguments = ["sweep", "--data", PipelineTests.data, "--from", pretrain + "/final.ckpt", "--strategies", "frozen,full",
        "--trials", "4", "--max-epochs", "4", "--batch", "32", "--seed", "\(seed)", "--threshold-images", "96",
        "--comm-timeout", "\(Int(timeout))", "--out", sweep] + model
      let ready = { FileManager.default.fileExists(atPath: sweep + "/journal.jsonl") }
      guard let kill = try chaos(arguments, marker: sweep, seed: seed, window: 0.05...1.2, ready: ready) else {
        lines.append("seed \(seed): the sweep finished before the kill")
        continue
      }
      XCTAssertNotEqual(kill.status, 0, "seed \(seed): the job exited 0 after rank \(kill.rank) was killed")
      // As above: the timeout, plus 10 s of teardown.
      XCTAssertLessThan(kill.exitSeconds, timeout + 10, "seed \(seed): survivors outlived the timeout")
      let before = (try? String(contentsOfFile: sweep + "/trials.csv", encoding: .utf8))?.components(separatedBy: ",finished,").count ?? 1
      let again = try Harness.mpi(3, arguments, limit: 600)
      XCTAssertEqual(again.status, 0, again.output)
      let rows = try String(contentsOfFile: sweep + "/trials.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
      for strategy in ["frozen", "full"] {
        let mine = rows.filter { $0[1] == strategy }
        XCTAssertEqual(mine.filter { $0[2] == "finished" }.count, 4, "seed \(seed), \(strategy): \(rows)")
        XCTAssertEqual(Set(mine.map { $0[0] }).count, mine.count, "seed \(seed), \(strategy): a trial twice")
      }
      lines.append(String(format: "seed %d: rank %d killed %.2f s in (%d finished trials then), job exited %d after %.2f s; re-run: %d finished, %d rows",
        seed, kill.rank, kill.at, before - 1, kill.status, kill.exitSeconds, rows.filter { $0[2] == "finished" }.count, rows.count))
    }
    print("chaos, sweep on 3 ranks (coordinator + 2 groups of 1):\n  " + lines.joined(separator: "\n  "))
  }
}

// Sweep bookkeeping: seeded trial draws, the space file, and the journal's exactly-N guarantee
// across failures and interruptions.
import Distributed
import Foundation
import Support
import Training
import XCTest

final class SweepTests: XCTestCase {
  func journalPath(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-journal-\(getpid())-\(name).jsonl").path
    try? FileManager.default.removeItem(atPath: path)
    return path
  }

  func testDrawsDependOnlyOnSeedStrategyAndIndex() {
    let space = SearchSpace.standard
    let a = (0..<20).map { space.draw(seed: 7, strategy: "full", index: $0, maxEpochs: 10) }
    // Drawn in another order (as groups would ask for them), the trials are the same.
    let b = (0..<20).reversed().map { space.draw(seed: 7, strategy: "full", index: $0, maxEpochs: 10) }.reversed()
    XCTAssertEqual(a, Array(b))
    XCTAssertNotEqual(a, (0..<20).map { space.draw(seed: 8, strategy: "full", index: $0, maxEpochs: 10) })
    XCTAssertNotEqual(a[0], space.draw(seed: 7, strategy: "bn-stats", index: 0, maxEpochs: 10))
    for t in a {
      XCTAssertTrue((1...10).contains(t.epochs))
      XCTAssertTrue(space.optimizers[t.optimizer]!.contains(t.learningRate))
      XCTAssertTrue(t.warmupEpochs <= t.epochs / 5)
    }
    // Four optimizers drawn evenly: 20 draws see at most two of them with probability
    // 6 x (1/2)^20 ~ 6e-6.
    XCTAssertGreaterThan(Set(a.map(\.optimizer)).count, 2, "twenty draws should visit several optimizers")
  }

  func testSpaceFileIsCheckedKeyByKey() throws {
    let good = try SearchSpace(json: Data(#"{"optimizers": {"sgd": [1e6, 1e6]}, "schedules": ["cosine"]}"#.utf8), source: "s.json")
    XCTAssertEqual(good.optimizers.keys.sorted(), ["sgd"])
    let bad: [(String, String)] = [
      ("[1, 2]", "not a JSON object"),
      (#"{"optimizers": {"rmsprop": [0.1, 1]}}"#, "unknown optimizer 'rmsprop'"),
      (#"{"optimizers": {"sgd": [1, 0.1]}}"#, "low <= high"),
      (#"{"optimizers": {"sgd": [-1, 0.1]}}"#, "low <= high"),
      (#"{"schedules": ["linear"]}"#, "unknown schedule 'linear'"),
      (#"{"zero_weight_decay": 2}"#, "probability"),
      (#"{"epochs": 3}"#, "unknown key 'epochs'"),
    ]
    for (text, phrase) in bad {
      XCTAssertThrowsError(try SearchSpace(json: Data(text.utf8), source: "s.json"), text) { error in
        XCTAssertTrue("\(error)".contains(phrase) && "\(error)".contains("s.json"), "\(text): \(error)")
      }
    }
  }

  /// A sweep driven through the journal with failures and a crash in the middle: each strategy
  /// ends with exactly N finished trials, none twice.
  func testExactlyNFinishedAcrossFailuresAndACrash() throws {
    let path = journalPath("exact")
    let space = SearchSpace.standard
    let target = 4
    var runs = 0
    func drive(_ journal: Journal, crashAfter: Int?) throws -> Bool {
      for strategy in ["bn-stats", "full"] {
        while true {
          let next = journal.next(strategy: strategy, target: target, maxFailures: target, excluding: [])
          let id: String
          switch next {
          case .none: break
          case .rerun(let existing):
            let record = journal.trials[existing]!
            id = try journal.start(record.settings, index: record.index, group: 0)
            try finish(journal, id)
            continue
          case .draw(let index):
            id = try journal.start(space.draw(seed: 1, strategy: strategy, index: index, maxEpochs: 5), index: index, group: 0)
            runs += 1
            if let crashAfter, runs == crashAfter { return false }  // "killed" with the trial open
            try finish(journal, id)
            continue
          }
          break
        }
      }
      return true
    }
    func finish(_ journal: Journal, _ id: String) throws {
      let index = journal.trials[id]!.index
      if index % 3 == 1 && journal.trials[id]!.attempts == 1 {
        try journal.end(id, status: .failed, metric: nil, seconds: 1, reason: "loss is nan at epoch 1")
      } else {
        try journal.end(id, status: .finished, metric: 0.5 + Double(index) / 100, seconds: 2)
      }
    }
    XCTAssertFalse(try drive(Journal(path: path), crashAfter: 5))
    let reopened = try Journal(path: path)
    XCTAssertEqual(reopened.trials.values.filter { $0.status == .interrupted }.count, 1)
    XCTAssertTrue(try drive(reopened, crashAfter: nil))
    let final = try Journal(path: path)
    for strategy in ["bn-stats", "full"] {
      let records = final.records(strategy: strategy)
      XCTAssertEqual(records.filter { $0.status == .finished }.count, target, strategy)
      XCTAssertEqual(Set(records.map(\.id)).count, records.count)
      XCTAssertTrue(records.contains { $0.status == .failed && $0.reason?.contains("nan") == true })
    }
    let csv = final.csv().split(separator: "\n")
    XCTAssertEqual(csv.filter { $0.contains(",finished,") }.count, 2 * target)
    XCTAssertTrue(csv[0].hasPrefix("trial,strategy,status,optimizer,learning_rate"))
  }

  /// The search summary counts each strategy's trials by status and gives min, median and max
  /// of the complete ones' metric (a stopped trial's counts; a failed one's does not).
  func testSearchSummary() throws {
    let journal = try Journal(path: journalPath("summary"))
    let space = SearchSpace.standard
    let ends: [(TrialStatus, Double?)] = [(.finished, 0.5), (.stopped, 0.2), (.failed, nil), (.finished, 0.4)]
    for (index, end) in ends.enumerated() {
      let id = try journal.start(space.draw(seed: 1, strategy: "full", index: index, maxEpochs: 3), index: index, group: 0)
      try journal.end(id, status: end.0, metric: end.1, seconds: 1, epochsRun: end.0 == .failed ? nil : 1)
    }
    let text = journal.summary(strategies: ["full", "frozen"], budget: "the rule")
    XCTAssertTrue(text.contains("the rule"), text)
    XCTAssertTrue(text.contains("| full | 4 | 2 | 1 | 1 | 0.2000 | 0.4000 | 0.5000 |"), text)
    XCTAssertTrue(text.contains("| frozen | 0 | 0 | 0 | 0 | n/a | n/a | n/a |"), text)
  }

  func testTornLastLineIsForgivenButEditsAreNot() throws {
    let path = journalPath("torn")
    let journal = try Journal(path: path)
    let id = try journal.start(SearchSpace.standard.draw(seed: 1, strategy: "full", index: 0, maxEpochs: 2), index: 0, group: 0)
    try journal.end(id, status: .finished, metric: 0.7, seconds: 1)
    let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
    handle.seekToEndOfFile()
    handle.write(Data(#"{"event": "start", "tri"#.utf8))
    try handle.close()
    XCTAssertEqual(try Journal(path: path).trials[id]?.status, .finished)
    var text = try String(contentsOfFile: path, encoding: .utf8)
    text = "garbage\n" + text
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try Journal(path: path)) { XCTAssertTrue("\($0)".contains(":1")) }
  }

  func testAshaRungsAndCutoffs() {
    let asha = Asha(eta: 3, minEpochs: 1)
    XCTAssertEqual((1...10).filter { asha.isRung(epoch: $0, of: 10) }, [1, 3, 9])
    XCTAssertEqual((1...3).filter { asha.isRung(epoch: $0, of: 3) }, [1], "the last epoch is no rung")
    XCTAssertEqual((1...8).filter { Asha(eta: 2, minEpochs: 2).isRung(epoch: $0, of: 9) }, [2, 4, 8])
    // Quantiles of a few values in Double: exact to ~1e-16.
    XCTAssertEqual(Asha(eta: 2).cutoff([4, 1, 3, 2])!, 2.5, accuracy: 1e-12)
    XCTAssertTrue(asha.shouldContinue(metric: 0.1, others: []).go, "the first trial at a rung goes on")
    // Among three, only the best third goes on: the cutoff is the 2/3 quantile.
    XCTAssertEqual(asha.shouldContinue(metric: 0.5, others: [0.6, 0.7]).cutoff, 0.6 + 0.1 / 3, accuracy: 1e-12)
    XCTAssertFalse(asha.shouldContinue(metric: 0.6, others: [0.5, 0.7]).go)
    XCTAssertTrue(asha.shouldContinue(metric: 0.7, others: [0.5, 0.6]).go)
    XCTAssertFalse(asha.shouldContinue(metric: .nan, others: []).go, "a NaN metric never goes on")
  }

  /// A one-rank sweep under ASHA with a simulated trainer whose metric grows with a per-trial
  /// quality: lagging trials stop at rungs, the best one runs to the end, every strategy still
  /// ends with exactly N complete trials, fewer epochs are trained than drawn, and a re-run
  /// trains nothing more.
  func testAshaStopsLaggingTrialsAndKeepsExactlyN() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-asha-\(getpid())").path
    try? FileManager.default.removeItem(atPath: directory)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let plan = SweepPlan(strategies: ["full"], trials: 8, groupSize: 1, maxEpochs: 9, maxFailures: 8, seed: 3,
      space: .standard, heartbeatTimeout: 10, asha: Asha(eta: 3, minEpochs: 1))
    func quality(_ s: TrialSettings) -> Double { Double(s.seed % 1000) / 1000 }
    var trained = 0
    func sweep() -> Sweep {
      let sweep = Sweep(world: LocalCommunicator(), plan: plan, directory: directory) { _, settings, _, progress in
        for epoch in 1...settings.epochs {
          trained += 1
          let metric = quality(settings) + 0.001 * Double(epoch)
          if !progress(epoch, metric) {
            return TrialOutcome(finished: true, metric: metric, seconds: 0, reason: nil, checkpoint: nil, stoppedAt: epoch)
          }
        }
        return TrialOutcome(finished: true, metric: quality(settings) + 0.001 * Double(settings.epochs), seconds: 0, reason: nil, checkpoint: nil)
      }
      sweep.logger = Log.silent
      return sweep
    }
    try sweep().run()
    let journal = try Journal(path: directory + "/journal.jsonl")
    let records = journal.records(strategy: "full")
    XCTAssertEqual(records.count, 8)
    XCTAssertTrue(records.allSatisfy { $0.status.isComplete })
    let stopped = records.filter { $0.status == .stopped }
    XCTAssertFalse(stopped.isEmpty, "no trial was stopped: \(records.map { ($0.settings.epochs, quality($0.settings)) })")
    // Counts: a stopped trial ran fewer epochs than drawn, so the sweep trained fewer in all.
    for r in stopped {
      XCTAssertLessThan(r.epochsRun!, r.settings.epochs)
      XCTAssertTrue(r.reason!.contains("cutoff"), r.reason!)
    }
    let drawn = records.map(\.settings.epochs).reduce(0, +)
    XCTAssertLessThan(trained, drawn)
    XCTAssertEqual(trained, records.map { $0.epochsRun! }.reduce(0, +))
    let best = records.max { quality($0.settings) < quality($1.settings) }!
    XCTAssertEqual(best.status, .finished, "the best trial was stopped")
    XCTAssertTrue(try String(contentsOfFile: directory + "/trials.csv", encoding: .utf8).contains(",stopped,"))
    let before = trained
    try sweep().run()
    XCTAssertEqual(trained, before, "a re-run of a complete sweep trained again")
  }
}

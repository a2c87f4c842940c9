// The sweep's coordinator and groups on 2 and 3 in-process ranks: rank 0 hands every trial out
// once, the groups run them (ASHA's decisions included), and the journal ends complete.
import Distributed
import Foundation
import Support
import Training
import XCTest

final class InProcessSweepTests: XCTestCase {
  /// Which world ranks ran each trial, and the epochs its leader trained (the ranks' threads
  /// write it).
  final class Ledger {
    private let lock = NSLock()
    private(set) var ranks: [String: [Int]] = [:]
    private(set) var epochs = 0

    func started(_ id: String, by rank: Int) {
      lock.withLock { ranks[id, default: []].append(rank) }
    }

    func trained(epochs count: Int) {
      lock.withLock { epochs += count }
    }
  }

  /// The ASHA test's sweep (8 trials of one strategy, up to 9 epochs, its simulated trainer),
  /// over a world of `ranks` in groups of `groupSize`, run twice.
  func testEveryTrialRunsOnceOnOneGroup() throws {
    for (ranks, groupSize) in [(2, 1), (3, 1), (3, 2)] {
      let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-sweep-np\(ranks)-g\(groupSize)-\(getpid())").path
      try? FileManager.default.removeItem(atPath: directory)
      defer { try? FileManager.default.removeItem(atPath: directory) }
      let plan = SweepPlan(strategies: ["full"], trials: 8, groupSize: groupSize, maxEpochs: 9, maxFailures: 8, seed: 3,
        space: .standard, heartbeatTimeout: 30, asha: Asha(eta: 3, minEpochs: 1))
      let ledger = Ledger()
      func sweep() throws {
        _ = try InProcessGroup.run(ranks: ranks) { world in
          let sweep = Sweep(world: world, plan: plan, directory: directory) { id, settings, group, progress in
            ledger.started(id, by: world.rank)
            // The group's ranks meet, as training's collectives would make them.
            guard try group.sum(1) == Double(groupSize) else { throw CommunicatorError.mismatch("\(id) ran on a group of the wrong size") }
            let quality = Double(settings.seed % 1000) / 1000
            for epoch in 1...settings.epochs {
              // An epoch takes a moment, so that every group has asked for work before the first
              // trial ends (they ask as soon as they start).
              Thread.sleep(forTimeInterval: 0.01)
              if group.rank == 0 { ledger.trained(epochs: 1) }
              if !progress(epoch, quality + 0.001 * Double(epoch)) {
                return TrialOutcome(finished: true, metric: quality + 0.001 * Double(epoch), seconds: 0, reason: nil, checkpoint: nil, stoppedAt: epoch)
              }
            }
            return TrialOutcome(finished: true, metric: quality + 0.001 * Double(settings.epochs), seconds: 0, reason: nil, checkpoint: nil)
          }
          sweep.logger = Log.silent
          try sweep.run()
        }
      }
      try sweep()
      let context = "\(ranks) ranks in groups of \(groupSize)"
      let journal = try Journal(path: directory + "/journal.jsonl", readOnly: true)
      let records = journal.records(strategy: "full")
      XCTAssertEqual(records.count, 8, context)
      XCTAssertTrue(records.allSatisfy { $0.status.isComplete && $0.attempts == 1 }, "\(context): \(records.map { ($0.id, $0.status, $0.attempts) })")
      XCTAssertEqual(Set(ledger.ranks.keys), Set(records.map(\.id)), context)
      let groups = (ranks - 1) / groupSize
      for record in records {
        // Once, on every rank of the group the journal names, and on no other.
        let group = Array((1 + record.group * groupSize)...((record.group + 1) * groupSize))
        XCTAssertEqual(ledger.ranks[record.id]?.sorted(), group, "\(context): \(record.id)")
      }
      XCTAssertEqual(Set(records.map(\.group)), Set(0..<groups), "\(context): every group gets trials")
      XCTAssertEqual(ledger.epochs, records.map { $0.epochsRun! }.reduce(0, +), context)
      let table = try String(contentsOfFile: directory + "/trials.csv", encoding: .utf8).split(separator: "\n")
      XCTAssertEqual(table.count, 1 + 8, context)
      XCTAssertTrue(table.dropFirst().allSatisfy { $0.contains(",finished,") || $0.contains(",stopped,") }, "\(context): \(table)")

      // A re-run of the complete sweep hands nothing out.
      let before = ledger.ranks
      try sweep()
      XCTAssertEqual(ledger.ranks, before, context)
    }
  }
}

// The sweep coordinator: rank 0 hands trials to groups of ranks (split from the world), hears
// their per-epoch metrics and heartbeats, keeps the journal, trials.csv and the best checkpoint
// of each strategy; the groups train. With one rank, that rank does everything in turn.
import Distributed
import Foundation
import Logging
import Support
import Tensors

public struct SweepPlan: Sendable {
  public var strategies: [String]
  public var trials: Int
  public var groupSize: Int
  public var maxEpochs: Int
  public var maxFailures: Int
  public var seed: UInt64
  public var space: SearchSpace
  /// Seconds without a word from a busy group before it is declared lost.
  public var heartbeatTimeout: Double
  /// Early stopping at rungs (nil: every trial runs all its epochs).
  public var asha: Asha?

  public init(
    strategies: [String], trials: Int, groupSize: Int, maxEpochs: Int, maxFailures: Int, seed: UInt64,
    space: SearchSpace, heartbeatTimeout: Double, asha: Asha? = nil
  ) {
    self.asha = asha
    self.strategies = strategies
    self.trials = trials
    self.groupSize = groupSize
    self.maxEpochs = maxEpochs
    self.maxFailures = maxFailures
    self.seed = seed
    self.space = space
    self.heartbeatTimeout = heartbeatTimeout
  }
}

/// How a trial ended, as its group reports it.
public struct TrialOutcome: Codable, Sendable {
  public var finished: Bool
  public var metric: Double?
  public var seconds: Double
  public var reason: String?
  /// The trial's final checkpoint (rank 0 of the group wrote it).
  public var checkpoint: String?
  /// The epoch after which the scheduler stopped the trial (nil: it ran all its epochs).
  public var stoppedAt: Int?

  public init(finished: Bool, metric: Double?, seconds: Double, reason: String?, checkpoint: String?, stoppedAt: Int? = nil) {
    self.stoppedAt = stoppedAt
    self.finished = finished
    self.metric = metric
    self.seconds = seconds
    self.reason = reason
    self.checkpoint = checkpoint
  }
}

/// What a group does with a trial: train it on `group`, calling `progress(epoch, metric)` after
/// each epoch and `progress(nil, nil)` now and then within epochs (heartbeats). Every rank of the
/// group calls it at the same points; when it returns false after an epoch, the scheduler has
/// stopped the trial: the runner ends training there and reports `stoppedAt`.
public typealias TrialRunner = (_ id: String, _ settings: TrialSettings, _ group: Communicator,
  _ progress: @escaping (Int?, Double?) -> Bool) throws -> TrialOutcome

public enum SweepError: Error, CustomStringConvertible {
  case badGroups(workers: Int, groupSize: Int)
  case lostGroup(leader: Int, trial: String, seconds: Double, run: String)
  case noResults(strategies: [String], run: String)

  public var description: String {
    switch self {
    case .badGroups(let workers, let size):
      return "--group-size \(size) does not divide the \(workers) worker ranks (every rank but the coordinator): use a group size that divides \(workers), or start \(workers - workers % size + 1) or \(workers - workers % size + size + 1) ranks"
    case .lostGroup(let leader, let trial, let seconds, let run):
      return "the group led by rank \(leader) has not been heard from for \(Int(seconds)) s while running \(trial); it is recorded interrupted. The sweep stops here: re-run the same command to resume \(run)"
    case .noResults(let strategies, let run):
      return "the sweep ended with no finished trial for \(strategies.joined(separator: "; ")): see \(run)/trials.csv, fix the cause, and re-run with a larger --max-failures (finished trials are kept)"
    }
  }
}

public final class Sweep {
  enum Tag: Int { case ready = 1, trial, stop, epoch, result, heartbeat, decision }

  public let world: Communicator
  public let plan: SweepPlan
  public let directory: String
  public let runner: TrialRunner
  public var logger = Log.logger("sweep")
  /// Seconds the coordinator spent on its own work (journal, CSV, checkpoints) per trial.
  public private(set) var coordinatorSeconds = 0.0

  public init(world: Communicator, plan: SweepPlan, directory: String, runner: @escaping TrialRunner) {
    self.world = world
    self.plan = plan
    self.directory = directory
    self.runner = runner
  }

  var journalPath: String { directory + "/journal.jsonl" }

  /// The finished trial with the best validation metric, per strategy (from the journal).
  public func bestTrials() throws -> [String: String] {
    let journal = try Journal(path: journalPath, readOnly: true)
    var best: [String: String] = [:]
    for strategy in plan.strategies {
      if let top = journal.best(strategy: strategy) { best[strategy] = top.id }
    }
    return best
  }
  /// The strategies that ended without any finished (or ASHA-stopped) trial, each with the
  /// reason its last failed trial gave.
  public func strategiesWithoutResults() throws -> [(strategy: String, reason: String?)] {
    let journal = try Journal(path: journalPath, readOnly: true)
    return plan.strategies.compactMap { strategy in
      let records = journal.records(strategy: strategy)
      guard !records.contains(where: { $0.status.isComplete }) else { return nil }
      return (strategy, records.last { $0.status == .failed }?.reason)
    }
  }

  public func bestCheckpoint(strategy: String) -> String { directory + "/best/\(strategy).ckpt" }

  public func run() throws {
    if world.size == 1 {
      try coordinate(local: true)
      return
    }
    let workers = world.size - 1
    guard workers % plan.groupSize == 0 else { throw SweepError.badGroups(workers: workers, groupSize: plan.groupSize) }
    let color = world.rank == 0 ? -1 : (world.rank - 1) / plan.groupSize
    let group = try world.split(color: color, key: world.rank)
    if world.rank == 0 {
      try coordinate(local: false)
    } else if let group {
      try work(group)
    }
  }

  // MARK: Coordinator

  private func coordinate(local: Bool) throws {
    try FileManager.default.createDirectory(atPath: directory + "/best", withIntermediateDirectories: true)
    let journal = try Journal(path: journalPath)
    try writeTable(journal)
    var running: [Int: (id: String, heard: Double)] = [:]  // leader rank -> trial
    var idle: [Int] = []
    var stopped = 0
    let groups = local ? 1 : (world.size - 1) / plan.groupSize
    var stopReasons: [String: String] = [:]

    /// ASHA at the end of `epoch`: records the metric at the rung and says whether the trial goes on.
    func decide(_ id: String, epoch: Int, metric: Double?) throws -> Bool {
      guard let asha = plan.asha, let record = journal.trials[id], asha.isRung(epoch: epoch, of: record.settings.epochs) else { return true }
      let begin = Clock.now()
      defer { coordinatorSeconds += Clock.now() - begin }
      let value = metric ?? -.infinity
      let others = journal.rungMetrics(strategy: record.settings.strategy, epoch: epoch, excluding: id)
      try journal.rung(id, epoch: epoch, metric: value)
      let (go, cutoff) = asha.shouldContinue(metric: value, others: others)
      if !go {
        stopReasons[id] = String(format: "stopped by ASHA after epoch %d of %d: %.4f below the rung's cutoff %.4f (%d trials there)",
          epoch, record.settings.epochs, value, cutoff, others.count + 1)
      }
      return go
    }

    func nextTrial() throws -> (String, TrialSettings)? {
      let busy = Set(running.values.map(\.id))
      for strategy in plan.strategies {
        switch journal.next(strategy: strategy, target: plan.trials, maxFailures: plan.maxFailures, excluding: busy) {
        case .none: continue
        case .rerun(let id):
          let record = journal.trials[id]!
          return (id, record.settings)
        case .draw(let index):
          let settings = plan.space.draw(seed: plan.seed, strategy: strategy, index: index, maxEpochs: plan.maxEpochs)
          return (Journal.trialID(strategy: strategy, index: index), settings)
        }
      }
      return nil
    }

    func record(_ id: String, _ outcome: TrialOutcome) throws {
      let begin = Clock.now()
      let status: TrialStatus = !outcome.finished ? .failed : outcome.stoppedAt == nil ? .finished : .stopped
      let reason = status == .stopped ? (stopReasons[id] ?? "stopped by ASHA after epoch \(outcome.stoppedAt!)") : outcome.reason
      try journal.end(id, status: status, metric: outcome.metric, seconds: outcome.seconds, reason: reason,
        epochsRun: outcome.finished ? (outcome.stoppedAt ?? journal.trials[id]!.settings.epochs) : nil)
      if outcome.finished, let checkpoint = outcome.checkpoint, let metric = outcome.metric {
        let strategy = journal.trials[id]!.settings.strategy
        let best = journal.records(strategy: strategy).filter { $0.status.isComplete }.compactMap(\.metric).max() ?? metric
        if metric >= best {
          let target = bestCheckpoint(strategy: strategy)
          try AtomicFile.copy(checkpoint, to: target)
        }
      }
      try writeTable(journal)
      coordinatorSeconds += Clock.now() - begin
      let r = journal.trials[id]!
      logger.info("trial \(id) \(r.status.rawValue)\(r.metric.map { String(format: ", validation mean F1 %.4f", $0) } ?? "")\(r.reason.map { " (\($0))" } ?? "")")
    }

    if local {
      while let (id, settings) = try nextTrial() {
        let index = Int(id.split(separator: "-").last!)!
        _ = try journal.start(settings, index: index, group: 0)
        logger.info("trial \(id): \(describe(settings))")
        let outcome = try runTrial(id, settings, LocalCommunicator()) { epoch, metric in
          guard let epoch else { return true }
          return (try? decide(id, epoch: epoch, metric: metric)) ?? true
        }
        try record(id, outcome)
      }
      logger.info("sweep done: \(summary(journal))")
      return
    }

    while stopped < groups {
      if let message = try world.receive(tag: nil, timeout: 1) {
        let leader = message.source
        switch Tag(rawValue: message.tag) {
        case .ready:
          idle.append(leader)
        case .epoch, .heartbeat:
          if let current = running[leader] { running[leader] = (current.id, Clock.now()) }
          if Tag(rawValue: message.tag) == .epoch, let info = try? JSONSerialization.jsonObject(with: Data(message.bytes)) as? [String: Any],
            let id = running[leader]?.id, let epoch = info["epoch"] as? Int {
            let metric = (info["metric"] as? NSNumber)?.doubleValue
            logger.info("  \(id) epoch \(epoch)\(metric.map { String(format: ": validation mean F1 %.4f", $0) } ?? "")")
            if let asha = plan.asha, let record = journal.trials[id], asha.isRung(epoch: epoch, of: record.settings.epochs) {
              let go = try decide(id, epoch: epoch, metric: metric)
              if !go { logger.info("  \(id) stopped by ASHA after epoch \(epoch)") }
              try world.send([go ? 1 : 0], to: leader, tag: Tag.decision.rawValue)
            }
          }
        case .result:
          guard let current = running.removeValue(forKey: leader) else { break }
          let outcome = try JSONDecoder().decode(TrialOutcome.self, from: Data(message.bytes))
          try record(current.id, outcome)  // the group asks for more with a ready message
        default:
          break
        }
      }
      // Hand out work; stop groups when nothing is left to run and nothing can fail any more.
      while let leader = idle.first {
        if let (id, settings) = try nextTrial() {
          idle.removeFirst()
          let index = Int(id.split(separator: "-").last!)!
          _ = try journal.start(settings, index: index, group: (leader - 1) / plan.groupSize)
          let payload = try JSONSerialization.data(withJSONObject: ["id": id, "settings": try JSONSerialization.jsonObject(with: try JSONEncoder().encode(settings))])
          try world.send([UInt8](payload), to: leader, tag: Tag.trial.rawValue)
          running[leader] = (id, Clock.now())
          logger.info("trial \(id) -> group \((leader - 1) / plan.groupSize): \(describe(settings))")
        } else if running.isEmpty {
          idle.removeFirst()
          try world.send([], to: leader, tag: Tag.stop.rawValue)
          stopped += 1
        } else {
          break
        }
      }
      for (leader, current) in running where Clock.now() - current.heard > plan.heartbeatTimeout {
        try journal.end(current.id, status: .interrupted, metric: nil, seconds: 0, reason: "group of rank \(leader) went silent")
        try writeTable(journal)
        throw SweepError.lostGroup(leader: leader, trial: current.id, seconds: plan.heartbeatTimeout, run: directory)
      }
    }
    logger.info("sweep done: \(summary(journal))")
  }

  private func writeTable(_ journal: Journal) throws {
    try AtomicFile.write(Array(journal.csv().utf8), to: directory + "/trials.csv")
  }

  private func summary(_ journal: Journal) -> String {
    plan.strategies.map { s in
      let records = journal.records(strategy: s)
      let best = records.filter { $0.status == .finished }.compactMap(\.metric).max()
      return "\(s) \(records.filter { $0.status == .finished }.count) finished\(best.map { String(format: " (best %.4f)", $0) } ?? "")"
    }.joined(separator: ", ")
  }

  private func describe(_ s: TrialSettings) -> String {
    String(format: "%@ lr %.3g, %@, wd %.2g, %d epochs (warmup %d)", s.optimizer, s.learningRate, s.schedule, s.weightDecay, s.epochs, s.warmupEpochs)
  }

  /// Runs one trial, turning a thrown error into a failed outcome (the sweep goes on).
  private func runTrial(_ id: String, _ settings: TrialSettings, _ group: Communicator, _ progress: @escaping (Int?, Double?) -> Bool) throws -> TrialOutcome {
    let start = Clock.now()
    do {
      return try runner(id, settings, group, progress)
    } catch let error as CommunicatorError {
      throw error
    } catch {
      return TrialOutcome(finished: false, metric: nil, seconds: Clock.now() - start, reason: "\(error)", checkpoint: nil)
    }
  }

  // MARK: Groups

  private func work(_ group: Communicator) throws {
    let leader = group.rank == 0
    while true {
      var message: [UInt8] = []
      var tag = Int64(Tag.stop.rawValue)
      if leader {
        try world.send([], to: 0, tag: Tag.ready.rawValue)
        guard let reply = try world.receive(tag: nil, timeout: .infinity) else { return }
        message = reply.bytes
        tag = Int64(reply.tag)
      }
      try group.broadcast(&tag)
      var length = Int64(message.count)
      try group.broadcast(&length)
      if !leader { message = [UInt8](repeating: 0, count: Int(length)) }
      try message.withUnsafeMutableBytes { try group.broadcast($0, root: 0) }
      guard tag == Int64(Tag.trial.rawValue),
        let object = try JSONSerialization.jsonObject(with: Data(message)) as? [String: Any],
        let id = object["id"] as? String, let settingsObject = object["settings"]
      else { return }
      let settings = try JSONDecoder().decode(TrialSettings.self, from: try JSONSerialization.data(withJSONObject: settingsObject))
      var lastBeat = Clock.now()
      let world = self.world
      let asha = plan.asha
      let outcome = try runTrial(id, settings, group) { epoch, metric in
        let rung = epoch.map { asha?.isRung(epoch: $0, of: settings.epochs) ?? false } ?? false
        var go: Int64 = 1
        if leader {
          if let epoch {
            var info: [String: Any] = ["epoch": epoch]
            if let metric { info["metric"] = metric }
            let bytes = (try? JSONSerialization.data(withJSONObject: info)).map { [UInt8]($0) } ?? []
            try? world.send(bytes, to: 0, tag: Tag.epoch.rawValue)
            lastBeat = Clock.now()
            if rung, let reply = try? world.receive(tag: Tag.decision.rawValue, timeout: .infinity) {
              go = reply.bytes.first == 0 ? 0 : 1
            }
          } else if Clock.now() - lastBeat > 2 {
            try? world.send([], to: 0, tag: Tag.heartbeat.rawValue)
            lastBeat = Clock.now()
          }
        }
        // Every rank of the group learns the decision (the same collective on all of them).
        if rung && group.size > 1 { try? group.broadcast(&go) }
        return go != 0
      }
      if leader { try world.send([UInt8](try JSONEncoder().encode(outcome)), to: 0, tag: Tag.result.rawValue) }
    }
  }
}

// The sweep journal: every trial's start and end appended to journal.jsonl and fsynced before it
// is acted on; replaying it tells a re-run what is finished, what was interrupted, and what to
// draw next, so each strategy ends with exactly N finished trials.
import Foundation

public enum TrialStatus: String, Sendable {
  case running, finished, failed, interrupted
  /// Ended early by the ASHA scheduler at a rung; counts as done (it is not run again).
  case stopped

  /// Done for good: counts towards the trials wanted per strategy.
  public var isComplete: Bool { self == .finished || self == .stopped }
}

/// One trial as the journal knows it.
public struct TrialRecord: Sendable {
  public let id: String
  public let index: Int
  public var settings: TrialSettings
  public var status: TrialStatus
  public var metric: Double?
  public var seconds: Double
  public var group: Int
  public var attempts: Int
  public var reason: String?
  /// Epochs the trial trained (fewer than its settings' when ASHA stopped it).
  public var epochsRun: Int?
}

public final class Journal {
  public let path: String
  public private(set) var trials: [String: TrialRecord] = [:]
  /// Trial ids in the order they were first started.
  public private(set) var order: [String] = []
  /// Validation metrics at ASHA rungs: strategy -> epoch -> trial -> metric.
  public private(set) var rungs: [String: [Int: [String: Double]]] = [:]
  private let descriptor: Int32

  public static func trialID(strategy: String, index: Int) -> String { "\(strategy)-\(index)" }

  /// Opens (or creates) the journal and replays it. A trial that started and never ended was
  /// interrupted: it is recorded so, and will run again.
  /// `readOnly`: replay only (any rank may read a finished sweep's journal; nothing is written).
  public init(path: String, readOnly: Bool = false) throws {
    self.path = path
    descriptor = readOnly ? -1 : open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    guard readOnly || descriptor >= 0 else { throw RunError.unwritable(path: path, reason: String(cString: strerror(errno))) }
    // Read with read(2): a byte that is not UTF-8 must make its line an error, not the whole
    // journal empty (Foundation's String(contentsOfFile:) fails as a whole, and leaks on an
    // empty file).
    let text = Self.contents(of: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
    var lineNumber = 0
    var endsWithNewline = true
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      lineNumber += 1
      if line.isEmpty { continue }
      guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
        // Only a torn last line (a crash mid-write) is forgiven.
        if lineNumber == text.split(separator: "\n", omittingEmptySubsequences: false).count {
          endsWithNewline = false
          continue
        }
        throw RunError.unreadable(path: "\(path):\(lineNumber)", reason: "not a journal record; the journal was edited or damaged: restore it or use another --out")
      }
      try replay(object, at: "\(path):\(lineNumber)")
    }
    if readOnly { return }
    if !endsWithNewline { _ = Glibc.write(descriptor, "\n", 1) }
    for id in order where trials[id]!.status == .running {
      try append(["event": "end", "trial": id, "status": TrialStatus.interrupted.rawValue, "reason": "the sweep stopped while it ran"])
    }
  }

  deinit { if descriptor >= 0 { close(descriptor) } }

  /// The bytes of the file, or nil when it cannot be opened (a new journal).
  static func contents(of path: String) -> [UInt8]? {
    let input = open(path, O_RDONLY)
    guard input >= 0 else { return nil }
    defer { close(input) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = chunk.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else { break }
      bytes += chunk[0..<count]
    }
    return bytes
  }

  private func replay(_ object: [String: Any], at location: String) throws {
    guard let event = object["event"] as? String, let id = object["trial"] as? String else {
      throw RunError.unreadable(path: location, reason: "a record without event or trial")
    }
    switch event {
    case "start":
      // isValidJSONObject first: serializing a bare number or string traps in Foundation.
      guard let settingsObject = object["settings"], JSONSerialization.isValidJSONObject(settingsObject),
        let data = try? JSONSerialization.data(withJSONObject: settingsObject),
        let settings = try? JSONDecoder().decode(TrialSettings.self, from: data),
        let index = object["index"] as? Int
      else { throw RunError.unreadable(path: location, reason: "a start record without settings") }
      let group = object["group"] as? Int ?? 0
      if var existing = trials[id] {
        existing.status = .running
        existing.attempts += 1
        existing.group = group
        trials[id] = existing
      } else {
        trials[id] = TrialRecord(
          id: id, index: index, settings: settings, status: .running, metric: nil, seconds: 0, group: group, attempts: 1, reason: nil,
          epochsRun: nil)
        order.append(id)
      }
    case "end":
      guard var record = trials[id], let statusName = object["status"] as? String, let status = TrialStatus(rawValue: statusName) else {
        throw RunError.unreadable(path: location, reason: "an end record for a trial that never started")
      }
      record.status = status
      record.metric = (object["metric"] as? NSNumber)?.doubleValue
      record.seconds += (object["seconds"] as? NSNumber)?.doubleValue ?? 0
      record.reason = object["reason"] as? String
      record.epochsRun = object["epochs_run"] as? Int
      trials[id] = record
    case "rung":
      guard let record = trials[id], let epoch = object["epoch"] as? Int, let metric = (object["metric"] as? NSNumber)?.doubleValue else {
        throw RunError.unreadable(path: location, reason: "a rung record without a started trial, epoch or metric")
      }
      rungs[record.settings.strategy, default: [:]][epoch, default: [:]][id] = metric
    default:
      throw RunError.unreadable(path: location, reason: "unknown event '\(event)'")
    }
  }

  /// Appends a record and fsyncs it; only then is the event applied (and acted on by the caller).
  public func append(_ object: [String: Any]) throws {
    guard descriptor >= 0 else { throw RunError.unwritable(path: path, reason: "opened read-only") }
    var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    data.append(UInt8(ascii: "\n"))
    let ok = data.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) == $0.count }
    guard ok, fsync(descriptor) == 0 else { throw RunError.unwritable(path: path, reason: String(cString: strerror(errno))) }
    try replay(object, at: path)
  }

  public func start(_ settings: TrialSettings, index: Int, group: Int) throws -> String {
    let id = Journal.trialID(strategy: settings.strategy, index: index)
    let encoded = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(settings))
    try append(["event": "start", "trial": id, "index": index, "group": group, "settings": encoded, "time": Date().timeIntervalSince1970])
    return id
  }

  public func end(_ id: String, status: TrialStatus, metric: Double?, seconds: Double, reason: String? = nil, epochsRun: Int? = nil) throws {
    var object: [String: Any] = ["event": "end", "trial": id, "status": status.rawValue, "seconds": seconds]
    if let metric, metric.isFinite { object["metric"] = metric }
    if let reason { object["reason"] = reason }
    if let epochsRun { object["epochs_run"] = epochsRun }
    try append(object)
  }

  /// Records a trial's validation metric at an ASHA rung (before the decision is sent).
  public func rung(_ id: String, epoch: Int, metric: Double) throws {
    try append(["event": "rung", "trial": id, "epoch": epoch, "metric": metric.isFinite ? metric : -1])
  }

  /// The metrics other trials of `strategy` recorded at the rung `epoch`.
  public func rungMetrics(strategy: String, epoch: Int, excluding id: String) -> [Double] {
    (rungs[strategy]?[epoch] ?? [:]).filter { $0.key != id }.map(\.value)
  }

  public func records(strategy: String) -> [TrialRecord] {
    order.compactMap { trials[$0] }.filter { $0.settings.strategy == strategy }
  }

  /// The complete trial with the best validation metric of a strategy.
  public func best(strategy: String) -> TrialRecord? {
    records(strategy: strategy).filter { $0.status.isComplete }.max { ($0.metric ?? -.infinity) < ($1.metric ?? -.infinity) }
  }

  /// What a strategy needs next: an interrupted trial to run again, a new index to draw, or
  /// nothing (enough finished or running; or too many failures).
  public enum Next: Equatable { case rerun(String), draw(Int), none }

  public func next(strategy: String, target: Int, maxFailures: Int, excluding running: Set<String>) -> Next {
    let records = records(strategy: strategy)
    let finished = records.filter { $0.status.isComplete }.count
    let inFlight = records.filter { $0.status == .running || running.contains($0.id) }.count
    guard finished + inFlight < target else { return .none }
    if let again = records.first(where: { $0.status == .interrupted && !running.contains($0.id) }) { return .rerun(again.id) }
    guard records.filter({ $0.status == .failed }).count <= maxFailures else { return .none }
    return .draw((records.map(\.index).max() ?? -1) + 1)
  }

  /// trials.csv: one row per trial, its latest status.
  /// The search in Markdown: per strategy, the trials by status and the validation metric of
  /// the complete ones (min, median, max), and `budget`, the rule every strategy ran under.
  public func summary(strategies: [String], budget: String) -> String {
    var text = "# The search\n\n" + budget + "\n\n"
    text += "| strategy | trials | finished | stopped by ASHA | failed | validation mean F1: min | median | max |\n|---|---|---|---|---|---|---|---|\n"
    for strategy in strategies {
      let records = records(strategy: strategy)
      let metrics = records.filter { $0.status.isComplete }.compactMap(\.metric).sorted()
      func cell(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "n/a" }
      let middle = metrics.isEmpty ? nil : metrics.count % 2 == 1 ? metrics[metrics.count / 2] : (metrics[metrics.count / 2 - 1] + metrics[metrics.count / 2]) / 2
      text += "| \(strategy) | \(records.count) | \(records.filter { $0.status == .finished }.count) | \(records.filter { $0.status == .stopped }.count) | "
      text += "\(records.filter { $0.status == .failed }.count) | \(cell(metrics.first)) | \(cell(middle)) | \(cell(metrics.last)) |\n"
    }
    return text
  }

  public func csv() -> String {
    var lines = ["trial,strategy,status,optimizer,learning_rate,schedule,weight_decay,epochs,warmup_epochs,seed,validation_mean_f1,seconds,group,attempts,epochs_run,reason"]
    for id in order {
      let r = trials[id]!
      let s = r.settings
      let reason = (r.reason ?? "").replacingOccurrences(of: "\"", with: "'")
      lines.append([
        r.id, s.strategy, r.status.rawValue, s.optimizer, String(format: "%.6g", s.learningRate), s.schedule,
        String(format: "%.6g", s.weightDecay), "\(s.epochs)", "\(s.warmupEpochs)", "\(s.seed)",
        r.metric.map { String(format: "%.6f", $0) } ?? "", String(format: "%.1f", r.seconds), "\(r.group)", "\(r.attempts)",
        r.epochsRun.map(String.init) ?? (r.status == .finished ? "\(s.epochs)" : ""),
        reason.isEmpty ? "" : "\"\(reason)\"",
      ].joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
  }
}

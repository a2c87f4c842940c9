// Rank 0 of a group that does not exist: one process stands in for rank 0 of `size` ranks, runs
// the trainer's step as it would run there, and records every collective the step issues, when
// it issues it and how many bytes it moves. The scaling model (Training/ScalingModel.swift)
// replays the record with modelled collective costs. The others' contributions are not there:
// a sum leaves this rank's values (every rank holds the same share size, so the arithmetic, and
// its time, is that of the real step), and a gather repeats this rank's block in every slot.
import Tensors

public final class TracingCommunicator: Communicator {
  /// What a recorded call is.
  public enum Kind: String, Codable, Sendable {
    /// An all-reduce the caller waits for.
    case allReduce = "allreduce"
    /// An all-reduce started without waiting (a gradient bucket); `wait` events name it.
    case startAllReduce = "start-allreduce"
    /// The caller waits for the started all-reduce `id`.
    case wait
    case allGather = "allgather"
    case broadcast
    case barrier
  }

  /// One call: `at` seconds after `mark()`, `bytes` moved per rank (the buffer of an all-reduce or
  /// broadcast, everything received by an all-gather), and who made it.
  public struct Event: Codable, Sendable, Equatable {
    public var kind: Kind
    public var bytes: Int
    public var at: Double
    /// What issued the call: "gradient" (the bucketed reduction), "batchnorm" (synchronized
    /// statistics) or "step" (the loss, SimCLR's negatives).
    public var source: String
    /// The started all-reduce that a `startAllReduce` begins or a `wait` waits for.
    public var id: Int?

    public init(kind: Kind, bytes: Int, at: Double, source: String, id: Int? = nil) {
      self.kind = kind
      self.bytes = bytes
      self.at = at
      self.source = source
      self.id = id
    }
  }

  /// The shared record of every view (`labelled`) of one traced group.
  final class Log {
    var origin = Clock.now()
    var events: [Event] = []
    var nextID = 0
  }

  public let size: Int
  public var rank: Int { 0 }
  public let source: String
  private let log: Log

  public init(size: Int, source: String = "step") {
    precondition(size >= 1)
    self.size = size
    self.source = source
    self.log = Log()
  }

  private init(size: Int, source: String, log: Log) {
    self.size = size
    self.source = source
    self.log = log
  }

  /// A view of the same group whose calls are recorded as made by `source`.
  public func labelled(_ source: String) -> TracingCommunicator {
    TracingCommunicator(size: size, source: source, log: log)
  }

  /// Forgets what was recorded and starts the clock again.
  public func mark() {
    log.origin = Clock.now()
    log.events = []
  }

  /// The calls since `mark()`, and the seconds since it.
  public func take() -> (events: [Event], seconds: Double) {
    (log.events, Clock.now() - log.origin)
  }

  @discardableResult
  private func record(_ kind: Kind, bytes: Int, id: Int? = nil) -> Int? {
    guard size > 1 else { return id }
    log.events.append(Event(kind: kind, bytes: bytes, at: Clock.now() - log.origin, source: source, id: id))
    return id
  }

  public func barrier() throws { record(.barrier, bytes: 0) }

  public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
    record(.broadcast, bytes: bytes.count)
  }

  public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
    record(.allReduce, bytes: count * 4)
  }

  public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {
    record(.allReduce, bytes: count * 8)
  }

  public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
    precondition(receive.count == send.count * size, "allGather: receive must hold size * send bytes")
    record(.allGather, bytes: receive.count)
    for r in 0..<size {
      UnsafeMutableRawBufferPointer(rebasing: receive[(r * send.count)..<((r + 1) * send.count)]).copyMemory(from: send)
    }
  }

  public func allGatherVariable(
    _ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>, counts: [Int]
  ) throws {
    precondition(counts.count == size, "allGatherVariable: one count per rank")
    record(.allGather, bytes: counts.reduce(0, +) * 4)
    var offset = 0
    for c in counts {
      // Every slot gets this rank's block (or as much of it as the slot holds).
      let n = min(c, count)
      (receive + offset).update(from: send, count: n)
      if c > n { (receive + offset + n).update(repeating: 0, count: c - n) }
      offset += c
    }
  }

  public func startAllReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction {
    let id = log.nextID
    log.nextID += 1
    record(.startAllReduce, bytes: count * 4, id: id)
    return Pending(owner: self, id: id)
  }

  /// A traced group of one is the only one that can be split (into itself).
  public func split(color: Int, key: Int) throws -> Communicator? {
    color < 0 ? nil : TracingCommunicator(size: 1, source: source)
  }

  public func send(_ bytes: [UInt8], to rank: Int, tag: Int) throws {
    throw CommunicatorError.mismatch("a traced group has no other ranks to send to")
  }

  public func receive(tag: Int?, timeout: Double) throws -> (source: Int, tag: Int, bytes: [UInt8])? { nil }

  final class Pending: PendingReduction {
    let owner: TracingCommunicator
    let id: Int
    private var waited = false

    init(owner: TracingCommunicator, id: Int) {
      self.owner = owner
      self.id = id
    }

    func test() throws -> Bool { true }

    func wait() throws {
      guard !waited else { return }
      waited = true
      owner.record(.wait, bytes: 0, id: id)
    }
  }
}

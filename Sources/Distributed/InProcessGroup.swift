// InProcessGroup: a group of N ranks in one process, each rank a thread with its own
// InProcessCommunicator, so that the data-parallel paths are tested without mpirun. The
// collectives keep MPI's semantics (matched in call order, rank-ordered sums, a timeout on every
// wait); the ranks share the process's statics, which separate processes under mpirun do not.
import Foundation
import Tensors

public enum InProcessGroup {
  /// Runs `body` on `ranks` threads, each with the communicator of its rank, and waits for all of
  /// them; returns each rank's value in rank order, or rethrows the first error a rank threw.
  /// Once a rank has thrown, the others' waits end with an error instead of their timeout (as
  /// MPI_Abort ends a job), so a failing rank cannot leave the test waiting.
  public static func run<Value>(
    ranks: Int, timeout: Double = 60, _ body: @escaping (InProcessCommunicator) throws -> Value
  ) throws -> [Value] {
    precondition(ranks >= 1 && timeout > 0)
    let job = Job()
    let world = SharedGroup(job: job, members: Array(0..<ranks))
    let values = Values<Value>(count: ranks)
    for rank in 0..<ranks {
      let communicator = InProcessCommunicator(rank: rank, group: world, timeout: timeout)
      let thread = Thread {
        let outcome = Result { try body(communicator) }
        job.locked {
          switch outcome {
          case .success(let value): values.values[rank] = value
          case .failure(let error): if job.failure == nil { job.failure = (rank, error) }
          }
          job.finished.insert(rank)
          job.condition.broadcast()
        }
      }
      thread.name = "rank \(rank) of \(ranks)"
      thread.start()
    }
    return try job.locked {
      while job.finished.count < ranks { job.condition.wait() }
      if let failure = job.failure { throw failure.error }
      return values.values.map { $0! }
    }
  }

  /// The ranks' values, written under the job's lock.
  final class Values<Value> {
    var values: [Value?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
  }
}

/// What the world and every group split from it share: one lock for all of their state, and
/// which ranks have stopped.
final class Job {
  let condition = NSCondition()
  /// The first rank (of the world) whose body threw, and its error.
  var failure: (rank: Int, error: Error)?
  /// World ranks whose body has returned or thrown.
  var finished = Set<Int>()

  func locked<T>(_ body: () throws -> T) rethrows -> T {
    condition.lock()
    defer { condition.unlock() }
    return try body()
  }

  /// Blocks (with the lock held) until a signal or `deadline` (seconds on `Clock`); false, without
  /// blocking, once the deadline has passed.
  func wait(until deadline: Double) -> Bool {
    if deadline == .infinity {
      condition.wait()
      return true
    }
    let remaining = deadline - Clock.now()
    guard remaining > 0 else { return false }
    _ = condition.wait(until: Date(timeIntervalSinceNow: remaining))
    return true
  }
}

/// Bytes copied from a rank's buffer, aligned for every element type the collectives sum.
final class Bytes {
  let base: UnsafeMutableRawPointer
  let count: Int

  init(count: Int) {
    base = .allocate(byteCount: max(count, 1), alignment: 16)
    self.count = count
  }

  convenience init(copying source: UnsafeRawPointer?, count: Int) {
    self.init(count: count)
    if let source, count > 0 { base.copyMemory(from: source, byteCount: count) }
  }

  deinit { base.deallocate() }
}

/// One collective: what each rank brought, and (once every rank has arrived) the outcome.
final class Round {
  /// The call and its sizes: every rank must make the same one at the same point.
  let signature: String
  var arrived: [Bool]
  var contributions: [Bytes?]
  var complete = false
  var result: Bytes?
  /// A split's groups by color.
  var groups: [Int: SharedGroup] = [:]
  var departed = 0

  init(signature: String, size: Int) {
    self.signature = signature
    arrived = Array(repeating: false, count: size)
    contributions = Array(repeating: nil, count: size)
  }
}

/// The state one group's communicators share (under the job's lock).
final class SharedGroup {
  let job: Job
  /// The world rank of each rank of the group.
  let members: [Int]
  /// Collectives in flight, by their number in call order.
  var rounds: [Int: Round] = [:]
  /// Each rank's messages not yet received, in the order they were sent.
  var mailboxes: [[(source: Int, tag: Int, bytes: [UInt8])]]

  init(job: Job, members: [Int]) {
    self.job = job
    self.members = members
    mailboxes = Array(repeating: [], count: members.count)
  }

  var size: Int { members.count }

  /// Why `round` can never complete, if it cannot: a rank threw, or a rank it waits for has
  /// returned from its body.
  func hopeless(_ round: Round) -> CommunicatorError? {
    if let failure = job.failure {
      return .mismatch("rank \(failure.rank) stopped with an error (\(failure.error)), so \(round.signature) cannot complete")
    }
    if let gone = round.arrived.indices.first(where: { !round.arrived[$0] && job.finished.contains(members[$0]) }) {
      return .mismatch("rank \(gone) returned without joining \(round.signature)")
    }
    return nil
  }
}

/// One rank's view of an in-process group. Like an MPI communicator, it belongs to its rank's
/// thread: collectives are matched by the order each rank calls them in.
public final class InProcessCommunicator: Communicator {
  public let rank: Int
  /// Seconds a collective may wait for the other ranks before it throws.
  public let timeout: Double
  let group: SharedGroup
  /// Collectives this rank has started.
  private var calls = 0

  init(rank: Int, group: SharedGroup, timeout: Double) {
    self.rank = rank
    self.group = group
    self.timeout = timeout
  }

  public var size: Int { group.size }

  // MARK: Rounds

  /// Joins the next collective with `contribution`; the last rank to arrive runs `combine` (all
  /// ranks pass the same one).
  private func arrive(_ signature: String, _ contribution: Bytes? = nil, combine: (Round) -> Void = { _ in }) throws -> (Int, Round) {
    let number = calls
    calls += 1
    return try group.job.locked {
      let round = group.rounds[number] ?? Round(signature: signature, size: size)
      guard round.signature == signature else {
        throw CommunicatorError.mismatch("rank \(rank) called \(signature) where another rank called \(round.signature) (collective \(number))")
      }
      group.rounds[number] = round
      round.arrived[rank] = true
      round.contributions[rank] = contribution
      if round.arrived.allSatisfy({ $0 }) {
        combine(round)
        round.contributions = []
        round.complete = true
        group.job.condition.broadcast()
      }
      return (number, round)
    }
  }

  /// With the lock held: waits for `round` to complete, then lets `leave` copy this rank's part
  /// of the outcome out.
  private func finish(_ number: Int, _ round: Round, leave: (Round) throws -> Void) throws {
    let deadline = Clock.now() + timeout
    while !round.complete {
      if let reason = group.hopeless(round) { throw reason }
      guard group.job.wait(until: deadline) else {
        throw CommunicatorError.timeout(call: round.signature, seconds: timeout, rank: rank)
      }
    }
    try leave(round)
    round.departed += 1
    if round.departed == size { group.rounds[number] = nil }
  }

  private func collective(
    _ signature: String, _ contribution: Bytes? = nil, combine: (Round) -> Void = { _ in }, leave: (Round) throws -> Void = { _ in }
  ) throws {
    let (number, round) = try arrive(signature, contribution, combine: combine)
    try group.job.locked { try finish(number, round, leave: leave) }
  }

  /// Adds the contributions in rank order, so that every rank gets the same bits.
  private static func sum<Element: FloatingPoint>(_ round: Round, as _: Element.Type, count: Int) {
    let total = Bytes(count: count * MemoryLayout<Element>.stride)
    let sum = total.base.bindMemory(to: Element.self, capacity: count)
    sum.update(from: round.contributions[0]!.base.bindMemory(to: Element.self, capacity: count), count: count)
    for contribution in round.contributions.dropFirst() {
      let values = contribution!.base.bindMemory(to: Element.self, capacity: count)
      for i in 0..<count { sum[i] += values[i] }
    }
    round.result = total
  }

  /// The contributions one after another, in rank order.
  private static func concatenate(_ round: Round) {
    let total = Bytes(count: round.contributions.reduce(0) { $0 + $1!.count })
    var offset = 0
    for contribution in round.contributions {
      (total.base + offset).copyMemory(from: contribution!.base, byteCount: contribution!.count)
      offset += contribution!.count
    }
    round.result = total
  }

  private func reduce<Element: FloatingPoint>(_ values: UnsafeMutablePointer<Element>, count: Int, name: String) throws {
    let bytes = count * MemoryLayout<Element>.stride
    try collective(
      "allReduceSum of \(count) \(name)", Bytes(copying: values, count: bytes),
      combine: { Self.sum($0, as: Element.self, count: count) },
      leave: { UnsafeMutableRawPointer(values).copyMemory(from: $0.result!.base, byteCount: bytes) })
  }

  // MARK: Communicator

  public func barrier() throws {
    try collective("barrier")
  }

  public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
    precondition((0..<size).contains(root), "broadcast from rank \(root) of \(size)")
    try collective(
      "broadcast of \(bytes.count) bytes from rank \(root)", rank == root ? Bytes(copying: bytes.baseAddress, count: bytes.count) : nil,
      combine: { $0.result = $0.contributions[root] },
      leave: { round in
        if rank != root, bytes.count > 0 { bytes.baseAddress!.copyMemory(from: round.result!.base, byteCount: bytes.count) }
      })
  }

  public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
    try reduce(values, count: count, name: "floats")
  }

  public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {
    try reduce(values, count: count, name: "doubles")
  }

  public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
    precondition(receive.count == send.count * size, "allGather: receive must hold size * send bytes")
    try collective(
      "allGather of \(send.count) bytes", Bytes(copying: send.baseAddress, count: send.count), combine: Self.concatenate,
      leave: { round in
        if receive.count > 0 { receive.baseAddress!.copyMemory(from: round.result!.base, byteCount: receive.count) }
      })
  }

  public func allGatherVariable(
    _ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>, counts: [Int]
  ) throws {
    precondition(counts.count == size && counts[rank] == count)
    let bytes = counts.reduce(0, +) * MemoryLayout<Float>.stride
    try collective(
      "allGatherVariable of \(counts) floats", Bytes(copying: send, count: count * MemoryLayout<Float>.stride), combine: Self.concatenate,
      leave: { UnsafeMutableRawPointer(receive).copyMemory(from: $0.result!.base, byteCount: bytes) })
  }

  /// The sum is made when the last rank starts it; each rank copies it into `values` when its
  /// `test()` or `wait()` first sees it complete.
  public func startAllReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction {
    let (number, round) = try arrive(
      "allReduceSum of \(count) floats", Bytes(copying: values, count: count * MemoryLayout<Float>.stride),
      combine: { Self.sum($0, as: Float.self, count: count) })
    return Pending(owner: self, number: number, round: round, values: values, count: count)
  }

  final class Pending: PendingReduction {
    let owner: InProcessCommunicator
    let number: Int
    let round: Round
    let values: UnsafeMutablePointer<Float>
    let count: Int
    private var done = false

    init(owner: InProcessCommunicator, number: Int, round: Round, values: UnsafeMutablePointer<Float>, count: Int) {
      self.owner = owner
      self.number = number
      self.round = round
      self.values = values
      self.count = count
    }

    func test() throws -> Bool {
      if done { return true }
      return try owner.group.job.locked {
        if !round.complete {
          if let reason = owner.group.hopeless(round) { throw reason }
          return false
        }
        try leave()
        return true
      }
    }

    func wait() throws {
      if done { return }
      try owner.group.job.locked { try leave() }
    }

    /// With the lock held.
    private func leave() throws {
      try owner.finish(number, round) { round in
        values.update(from: round.result!.base.bindMemory(to: Float.self, capacity: count), count: count)
      }
      done = true
    }
  }

  /// Ranks of a color form a group, ordered by key and then by rank (MPI_Comm_split's order).
  public func split(color: Int, key: Int) throws -> Communicator? {
    let mine = [Int64(color), Int64(key)]
    let group = self.group
    var subgroup: SharedGroup?
    try collective(
      "split", mine.withUnsafeBytes { Bytes(copying: $0.baseAddress, count: $0.count) },
      combine: { round in
        let choices = round.contributions.map { $0!.base.bindMemory(to: Int64.self, capacity: 2) }
        for color in Set(choices.map { $0[0] }) where color >= 0 {
          let ranks = choices.indices.filter { choices[$0][0] == color }.sorted { (choices[$0][1], $0) < (choices[$1][1], $1) }
          round.groups[Int(color)] = SharedGroup(job: group.job, members: ranks.map { group.members[$0] })
        }
      },
      leave: { subgroup = color < 0 ? nil : $0.groups[color] })
    guard let subgroup else { return nil }
    return InProcessCommunicator(rank: subgroup.members.firstIndex(of: group.members[rank])!, group: subgroup, timeout: timeout)
  }

  /// Messages are buffered: a send never waits for the receiver.
  public func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
    precondition((0..<size).contains(destination), "send to rank \(destination) of \(size)")
    group.job.locked {
      group.mailboxes[destination].append((rank, tag, bytes))
      group.job.condition.broadcast()
    }
  }

  /// Nil after `timeout` seconds without a matching message, or at once when every other rank
  /// has returned and none is queued (none can come then).
  public func receive(tag: Int?, timeout: Double) throws -> (source: Int, tag: Int, bytes: [UInt8])? {
    let deadline = Clock.now() + timeout
    let others = (0..<size).filter { $0 != rank }
    return try group.job.locked {
      while true {
        if let index = group.mailboxes[rank].firstIndex(where: { tag == nil || $0.tag == tag }) {
          return group.mailboxes[rank].remove(at: index)
        }
        if let failure = group.job.failure {
          throw CommunicatorError.mismatch("rank \(failure.rank) stopped with an error (\(failure.error)) while rank \(rank) waited for a message")
        }
        if others.allSatisfy({ group.job.finished.contains(group.members[$0]) }) { return nil }
        if !group.job.wait(until: deadline) { return nil }
      }
    }
  }
}

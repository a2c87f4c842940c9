// The Communicator protocol: what data-parallel training needs from MPI, and its errors.
import Tensors

public enum CommunicatorError: Error, CustomStringConvertible {
  /// An MPI call failed; `message` is MPI_Error_string's text.
  case mpi(call: String, code: Int32, message: String)
  /// A collective made no progress for `seconds`: a rank has probably died or hangs.
  case timeout(call: String, seconds: Double, rank: Int)
  case mismatch(String)

  public var description: String {
    switch self {
    case .mpi(let call, let code, let message):
      return "\(call) failed (MPI error \(code)): \(message)"
    case .timeout(let call, let seconds, let rank):
      return "rank \(rank): \(call) made no progress for \(Int(seconds)) s; another rank has probably died or hangs. "
        + "Check the other ranks' output; raise the limit with --comm-timeout or FAIRTUNE_COMM_TIMEOUT if steps are legitimately slow."
    case .mismatch(let message):
      return message
    }
  }
}

/// A nonblocking reduction in flight.
public protocol PendingReduction: AnyObject {
  /// Progresses the operation; true once it has completed.
  func test() throws -> Bool
  /// Blocks (with the communicator's timeout) until it completes.
  func wait() throws
}

/// The collective operations of a group of ranks. `MPICommunicator` implements them with MPI,
/// `LocalCommunicator` for a group of one.
public protocol Communicator: AnyObject {
  var rank: Int { get }
  var size: Int { get }
  func barrier() throws
  /// Replaces every rank's bytes with the root's.
  func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
  func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws
  func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) throws
  /// Concatenates every rank's `send` (same length everywhere) in rank order into `receive`.
  func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws
  /// Concatenates every rank's floats in rank order; `counts[r]` floats come from rank r.
  func allGatherVariable(
    _ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>, counts: [Int]) throws
  /// Starts an in-place sum; the buffer must stay untouched until the reduction completes.
  func startAllReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction
  /// The same sum with bfloat16 on the wire (half the bytes): every rank's values rounded to
  /// bfloat16, each hop's sum done in fp32 and rounded to bfloat16, the result back in fp32.
  func startAllReduceSumBFloat16(_ values: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction
  /// Splits into groups by `color` (ranks ordered by `key`); nil for a negative color.
  func split(color: Int, key: Int) throws -> Communicator?
  /// Sends a message to one rank (returns once the bytes are handed to MPI).
  func send(_ bytes: [UInt8], to rank: Int, tag: Int) throws
  /// The next message from any rank (with `tag`, or any tag when nil), or nil if none arrives
  /// within `timeout` seconds.
  func receive(tag: Int?, timeout: Double) throws -> (source: Int, tag: Int, bytes: [UInt8])?
}

extension Communicator {
  public var isRoot: Bool { rank == 0 }

  /// For communicators without a wire (one process, threads, a trace): the same numbers as the
  /// bfloat16 wire on 2 ranks, whose one hop adds the two rounded values in fp32 and rounds the
  /// sum. With more ranks MPI's order of hops decides which partial sums are rounded.
  public func startAllReduceSumBFloat16(_ values: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction {
    BFloat16.round(values, count: count)
    let inner = try startAllReduceSum(values, count: count)
    return CompletedAfter(inner) { BFloat16.round(values, count: count) }
  }

  /// Broadcasts a value's bytes from the root.
  public func broadcast<T>(_ value: inout T, root: Int = 0) throws {
    try withUnsafeMutableBytes(of: &value) { try broadcast($0, root: root) }
  }

  /// Every rank's 64-bit value, in rank order.
  public func allGather(_ value: UInt64) throws -> [UInt64] {
    var mine = value
    var all = [UInt64](repeating: 0, count: size)
    try withUnsafeBytes(of: &mine) { send in
      try all.withUnsafeMutableBytes { try allGather(send, into: $0) }
    }
    return all
  }

  /// Sums a scalar over the ranks.
  public func sum(_ value: Double) throws -> Double {
    var v = value
    try allReduceSum(&v, count: 1)
    return v
  }
}

/// FNV-1a over bytes: the digest behind replica and configuration checks.
public func digest(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> UInt64 {
  var h = seed
  for byte in bytes {
    h ^= UInt64(byte)
    h = h &* 0x0000_0100_0000_01B3
  }
  return h
}

public func digest(_ text: String) -> UInt64 {
  var copy = text
  return copy.withUTF8 { digest(UnsafeRawBufferPointer($0)) }
}

/// A reduction followed by `then` once it completes (exactly once).
public final class CompletedAfter: PendingReduction {
  private let inner: PendingReduction
  private var then: (() -> Void)?

  public init(_ inner: PendingReduction, then: @escaping () -> Void) {
    self.inner = inner
    self.then = then
  }

  public func test() throws -> Bool {
    guard try inner.test() else { return false }
    finish()
    return true
  }

  public func wait() throws {
    try inner.wait()
    finish()
  }

  private func finish() {
    then?()
    then = nil
  }
}

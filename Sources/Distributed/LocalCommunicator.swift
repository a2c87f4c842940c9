// LocalCommunicator: a group of one rank, in process; every collective is the identity.

public final class LocalCommunicator: Communicator {
  public init() {}
  public var rank: Int { 0 }
  public var size: Int { 1 }
  public func barrier() throws {}
  public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {}
  public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {}
  public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {}

  public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
    receive.copyMemory(from: send)
  }

  public func allGatherVariable(
    _ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>, counts: [Int]
  ) throws {
    receive.update(from: send, count: count)
  }

  public func startAllReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction {
    Completed()
  }

  public func split(color: Int, key: Int) throws -> Communicator? { color < 0 ? nil : LocalCommunicator() }

  /// Messages to self, in order.
  private var mailbox: [(tag: Int, bytes: [UInt8])] = []

  public func send(_ bytes: [UInt8], to rank: Int, tag: Int) throws {
    precondition(rank == 0, "a group of one has only rank 0")
    mailbox.append((tag, bytes))
  }

  public func receive(tag: Int?, timeout: Double) throws -> (source: Int, tag: Int, bytes: [UInt8])? {
    guard let index = mailbox.firstIndex(where: { tag == nil || $0.tag == tag }) else { return nil }
    let message = mailbox.remove(at: index)
    return (0, message.tag, message.bytes)
  }

  final class Completed: PendingReduction {
    func test() throws -> Bool { true }
    func wait() throws {}
  }
}

// Tensor: a shape and a contiguous, 64-byte aligned Float32 storage (owned, or a view into another).
import Foundation

/// Activations are laid out NHWC (channels last): a 1x1 convolution is then a plain GEMM over
/// N*H*W rows, im2col copies whole channel vectors, and BatchNorm statistics vectorise across
/// channels. Convolution weights are stored OHWI for the same reason; the safetensors I/O
/// converts to and from torchvision's OIHW.
public final class Tensor {
  /// Storage allocations so far in this process: a test checks that a training step after the
  /// first allocates none.
  /// (The loader's threads make tensors too, so the count is kept under a lock.)
  public static var allocations: Int {
    allocationLock.lock()
    defer { allocationLock.unlock() }
    return allocationCount
  }
  nonisolated(unsafe) private static var allocationCount = 0
  private static let allocationLock = NSLock()

  public let shape: [Int]
  public let count: Int
  public let data: UnsafeMutablePointer<Float>
  private let owner: AnyObject?
  private let owned: Bool

  /// A new zero-filled tensor.
  public init(shape: [Int]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
    self.shape = shape
    self.count = shape.reduce(1, *)
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
    data = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    data.initialize(repeating: 0, count: max(count, 1))
    Tensor.allocationLock.lock()
    Tensor.allocationCount += 1
    Tensor.allocationLock.unlock()
    owner = nil
    owned = true
  }

  public convenience init(shape: [Int], values: [Float]) {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
    self.init(shape: shape)
    values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
  }

  /// A view of `count(shape)` floats starting at `data`, kept alive by `owner`.
  public init(viewing data: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject?) {
    self.shape = shape
    self.count = shape.reduce(1, *)
    self.data = data
    self.owner = owner
    self.owned = false
  }

  deinit {
    if owned { UnsafeMutableRawPointer(data).deallocate() }
  }

  public var buffer: UnsafeMutableBufferPointer<Float> {
    UnsafeMutableBufferPointer(start: data, count: count)
  }

  public var array: [Float] { Array(buffer) }

  public func fill(_ value: Float) { data.update(repeating: value, count: count) }

  public func copy(from other: Tensor) {
    precondition(other.count == count, "copy of \(other.count) floats into \(count)")
    data.update(from: other.data, count: count)
  }
}

/// A growable scratch buffer: it reallocates only when asked for more than it has, so a training
/// step allocates nothing once the first step has sized every buffer.
public struct Workspace {
  public private(set) var tensor: Tensor?
  public init() {}

  public mutating func pointer(count: Int) -> UnsafeMutablePointer<Float> {
    if let tensor, tensor.count >= count { return tensor.data }
    let fresh = Tensor(shape: [count])
    tensor = fresh
    return fresh.data
  }
}

/// A `Workspace` that several layers can hold: those whose buffers are never in use at the
/// same time share one, so that a step keeps reusing the same (cache-warm) memory.
public final class SharedWorkspace {
  private var workspace = Workspace()
  public init() {}

  /// At least `count` floats; the buffer only grows, and its contents are whatever the last
  /// holder left.
  public func pointer(count: Int) -> UnsafeMutablePointer<Float> { workspace.pointer(count: count) }
}

// Wall time per layer type, for `fairtune bench`; off unless enabled, and then one clock read a call.
import Tensors

public enum LayerType: String, CaseIterable, Sendable {
  case convolution, batchnorm, pooling, residual, linear, loss, optimizer
}

public enum Profiler {
  nonisolated(unsafe) public static var enabled = false
  nonisolated(unsafe) public static var seconds = [LayerType: Double]()

  @inline(__always)
  public static func time<T>(_ type: LayerType, _ body: () -> T) -> T {
    guard enabled else { return body() }
    let start = Clock.now()
    let result = body()
    seconds[type, default: 0] += Clock.now() - start
    return result
  }

  /// Per convolution shape (see `Conv2d.profileKey`): seconds of forward, weight gradient and
  /// input gradient, and how many layers share the shape.
  nonisolated(unsafe) public static var convolutions = [String: [Double]]()

  @inline(__always)
  static func time<T>(_ key: @autoclosure () -> String, part: Int, _ body: () -> T) -> T {
    guard enabled else { return body() }
    let start = Clock.now()
    let result = body()
    convolutions[key(), default: [0, 0, 0, 0]][part] += Clock.now() - start
    return result
  }

  public static func reset() {
    seconds = [:]
    convolutions = [:]
  }
}

// Parallel loops for the non-GEMM work (im2col, BatchNorm, pooling), split over a few workers.
import Dispatch

public enum Parallel {
  /// Worker count for the loops below; `fairtune --threads` sets it together with OpenBLAS's.
  nonisolated(unsafe) public static var workers = 2

  /// How many chunks `forEach` splits `count` items into.
  @inlinable
  public static func chunkCount(_ count: Int, grain: Int = 1) -> Int {
    min(workers, max(1, count / max(grain, 1)))
  }

  /// Runs `body(chunk, range)` over `0..<count` in `chunkCount(count, grain:)` contiguous
  /// chunks; one chunk runs inline, without synchronisation.
  @inlinable
  public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Int, Range<Int>) -> Void) {
    let chunks = chunkCount(count, grain: grain)
    if chunks <= 1 {
      body(0, 0..<count)
      return
    }
    withoutActuallyEscaping(body) { body in
      DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
        body(chunk, (count * chunk / chunks)..<(count * (chunk + 1) / chunks))
      }
    }
  }

  @inlinable
  public static func forEach(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    forEachChunk(count, grain: grain) { _, range in body(range) }
  }
}

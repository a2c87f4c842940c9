// Losses: binary cross-entropy with logits (mean over all outputs) and softmax cross-entropy.
#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

public enum Losses {
  /// mean over N*K of BCE(sigmoid(z), t); writes dL/dz into `gradient` when given.
  /// logits, targets: [N, K]. With data parallelism, `meanOver` is the global batch's N*K, so
  /// that summing the ranks' gradients gives the gradient of the global mean (each rank
  /// weighted by its share of the batch); the returned loss is then this rank's share.
  public static func binaryCrossEntropyWithLogits(
    logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int,
    gradient: UnsafeMutablePointer<Float>?, meanOver: Int? = nil
  ) -> Float {
    var total: Double = 0
    let denominator = meanOver ?? count
    let scale = 1 / Float(denominator)
    for i in 0..<count {
      let z = logits[i]
      let t = targets[i]
      // max(z, 0) - z t + log(1 + exp(-|z|)) is the overflow-free form.
      total += Double(max(z, 0) - z * t + log1pf(expf(-abs(z))))
      if let gradient {
        let sigmoid = z >= 0 ? 1 / (1 + expf(-z)) : expf(z) / (1 + expf(z))
        gradient[i] = (sigmoid - t) * scale
      }
    }
    return Float(total / Double(denominator))
  }

  /// mean over N rows of -log softmax(z)[label]; logits: [N, K], labels: [N].
  public static func softmaxCrossEntropy(
    logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, classes: Int,
    gradient: UnsafeMutablePointer<Float>?
  ) -> Float {
    var total: Double = 0
    for n in 0..<batch {
      let z = logits + n * classes
      var m = -Float.infinity
      for k in 0..<classes { m = max(m, z[k]) }
      var sum: Float = 0
      for k in 0..<classes { sum += expf(z[k] - m) }
      let label = Int(labels[n])
      total += Double(logf(sum) + m - z[label])
      if let gradient {
        let g = gradient + n * classes
        for k in 0..<classes { g[k] = expf(z[k] - m) / sum / Float(batch) }
        g[label] -= 1 / Float(batch)
      }
    }
    return Float(total / Double(batch))
  }
}

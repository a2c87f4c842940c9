// Losses: binary cross-entropy with logits (mean over all outputs), softmax cross-entropy, and
// SimCLR's NT-Xent.
import Tensors
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

  /// SimCLR's NT-Xent over M embeddings (all ranks' rows, raw, [M, D]) for the anchors
  /// `anchors` (this rank's rows); `positive(i)` is the other view of row i. Rows are
  /// L2-normalised, similarities divided by `temperature`, and each anchor's loss is the
  /// cross-entropy of its positive against every other row; `normalizer` (the global number of
  /// anchors) turns the sum into the global mean.
  ///
  /// Writes into `gradient` [M, D] this rank's part of dL/dz for every row: rows of other ranks
  /// get the terms where they serve as negatives or positives of these anchors. Summing
  /// `gradient` over the ranks gives the full gradient. Returns the loss sum over the anchors
  /// (divided by `normalizer`) and how many anchors ranked their positive first.
  public static func ntXent(
    embeddings z: UnsafePointer<Float>, rows m: Int, dimension d: Int, anchors: Range<Int>,
    positive: (Int) -> Int, temperature: Float, normalizer: Int,
    gradient: UnsafeMutablePointer<Float>, scratch: inout Workspace
  ) -> (loss: Double, correct: Int) {
    let a = anchors.count
    // u [M, D] (normalised rows), norms [M], similarities / probabilities [A, M], du [M, D].
    let base = scratch.pointer(count: m * d + m + a * m + m * d)
    let u = base
    let norms = u + m * d
    let s = norms + m
    let du = s + a * m
    for i in 0..<m {
      var n: Float = 0
      for k in 0..<d { n += z[i * d + k] * z[i * d + k] }
      norms[i] = max(n.squareRoot(), 1e-12)
      for k in 0..<d { u[i * d + k] = z[i * d + k] / norms[i] }
    }
    // s = U_anchors U^T / tau
    BLAS.sgemm(transposeB: true, m: a, n: m, k: d, alpha: 1 / temperature, a: u + anchors.lowerBound * d, lda: d,
      b: u, ldb: d, c: s, ldc: m)
    var loss = 0.0
    var correct = 0
    let scale = 1 / Float(normalizer)
    for r in 0..<a {
      let i = anchors.lowerBound + r
      let p = positive(i)
      let row = s + r * m
      var top = -Float.infinity
      var best = -1
      for k in 0..<m where k != i && row[k] > top {
        top = row[k]
        best = k
      }
      if best == p { correct += 1 }
      var sum: Double = 0
      for k in 0..<m where k != i { sum += Double(expf(row[k] - top)) }
      loss += log(sum) + Double(top) - Double(row[p])
      // dL/ds_ik = (softmax_ik - [k == p]) / normalizer, 0 on the diagonal.
      for k in 0..<m { row[k] = k == i ? 0 : Float(Double(expf(row[k] - top)) / sum) * scale }
      row[p] -= scale
    }
    // du = G^T U_anchors / tau (as columns) + rows: du_anchors += G U / tau
    BLAS.sgemm(transposeA: true, m: m, n: d, k: a, alpha: 1 / temperature, a: s, lda: m,
      b: u + anchors.lowerBound * d, ldb: d, c: du, ldc: d)
    BLAS.sgemm(m: a, n: d, k: m, alpha: 1 / temperature, a: s, lda: m, b: u, ldb: d, beta: 1,
      c: du + anchors.lowerBound * d, ldc: d)
    // Through the normalisation: dz = (du - u (u . du)) / |z|
    for i in 0..<m {
      var dot: Float = 0
      for k in 0..<d { dot += u[i * d + k] * du[i * d + k] }
      for k in 0..<d { gradient[i * d + k] = (du[i * d + k] - u[i * d + k] * dot) / norms[i] }
    }
    return (loss / Double(normalizer), correct)
  }
}

// A linear head fitted to convergence on fixed features: K independent L2-regularised logistic
// regressions, minimised together with L-BFGS.
import Foundation
import Tensors

/// The frozen strategy's problem: features X [n, d] that never change, labels Y [n, K] in {0, 1},
/// and the head z = X Wᵀ + b. The objective is the trainer's loss plus weight decay on W,
///
///   f(W, b) = 1/(n K) Σ_i Σ_k [softplus(z_ik) - y_ik z_ik] + λ/2 ||W||²,
///
/// the penalty whose gradient λW is what SGD's weight decay adds (the bias is not decayed). The
/// problem is convex, so "trained" has a meaning that does not depend on a learning rate or an
/// epoch count: the minimiser, reached when the largest gradient component falls below
/// `gradientTolerance`, or when no step lowers the objective any more with the gradient within
/// 100 times that (`Stop.stalled`).
public struct LogisticRegression {
  public var weightDecay: Double
  /// Stop when max |∂f| is below this (f is a mean, so its gradient is of order 1e-2 at the
  /// start; float products bound what can be reached at about 1e-7).
  public var gradientTolerance: Double
  public var maxIterations: Int
  /// Pairs (s, y) kept by L-BFGS.
  public var memory: Int

  public init(weightDecay: Double, gradientTolerance: Double = 1e-6, maxIterations: Int = 1000, memory: Int = 10) {
    self.weightDecay = weightDecay
    self.gradientTolerance = gradientTolerance
    self.maxIterations = maxIterations
    self.memory = memory
  }

  /// Why the minimisation ended.
  public enum Stop: String, Sendable {
    /// The largest gradient component fell below the tolerance.
    case gradient
    /// No step along the search direction lowered the objective any more: the objective's
    /// float32 products (about 1e-7 relative) hide what is left. Converged as far as the
    /// arithmetic can tell, when the gradient is within 100 times the tolerance.
    case stalled
    /// The iteration limit came first.
    case iterations
  }

  public struct Fit: Sendable {
    /// [K, d] and [K].
    public var weight: [Float]
    public var bias: [Float]
    public var loss: Double
    public var gradientNorm: Double
    public var iterations: Int
    public var stop: Stop
    public var converged: Bool
    /// The objective after each iteration (the first entry at the starting point).
    public var losses: [Double]
  }

  /// The objective and its gradient at `parameters` ([K * d] weights then [K] biases). With
  /// `penaltyScale` (d values), weight column j's penalty is multiplied by penaltyScale[j]: the
  /// objective in standardized coordinates, where a weight u = W σ carries the penalty λ/2 (u/σ)².
  public func objective(
    _ parameters: [Double], features: UnsafePointer<Float>, labels: UnsafePointer<Float>, count n: Int, dimension d: Int, outputs k: Int,
    penaltyScale: [Double]? = nil
  ) -> (value: Double, gradient: [Double]) {
    let weight = parameters[0..<(k * d)].map(Float.init)
    var logits = [Float](repeating: 0, count: n * k)
    // The solver's products stay fp32 whatever --precision says: it is an optimizer (fp32 under
    // autocast's rules too), and a gradient in bfloat16 could not reach its 1e-6 tolerance.
    weight.withUnsafeBufferPointer { w in
      logits.withUnsafeMutableBufferPointer { z in
        BLAS.sgemm(transposeB: true, m: n, n: k, k: d, a: features, lda: d, b: w.baseAddress!, ldb: d, c: z.baseAddress!, ldc: k, precision: .fp32)
      }
    }
    let scale = 1 / Double(n * k)
    var loss = 0.0
    var dLogits = [Float](repeating: 0, count: n * k)
    var biasGradient = [Double](repeating: 0, count: k)
    for i in 0..<n {
      for j in 0..<k {
        let z = Double(logits[i * k + j]) + parameters[k * d + j]
        let y = Double(labels[i * k + j])
        // softplus(z) - y z and sigmoid(z) from one exp(-|z|), without overflow for large |z|.
        let e = exp(-abs(z))
        loss += max(z, 0) - y * z + log1p(e)
        let sigmoid = z >= 0 ? 1 / (1 + e) : e / (1 + e)
        let g = (sigmoid - y) * scale
        dLogits[i * k + j] = Float(g)
        biasGradient[j] += g
      }
    }
    var weightGradient = [Float](repeating: 0, count: k * d)
    dLogits.withUnsafeBufferPointer { dz in
      weightGradient.withUnsafeMutableBufferPointer { dw in
        BLAS.sgemm(transposeA: true, m: k, n: d, k: n, a: dz.baseAddress!, lda: k, b: features, ldb: d, c: dw.baseAddress!, ldc: d, precision: .fp32)
      }
    }
    var gradient = [Double](repeating: 0, count: k * d + k)
    var penalty = 0.0
    for index in 0..<(k * d) {
      let scale = penaltyScale?[index % d] ?? 1
      penalty += scale * parameters[index] * parameters[index]
      gradient[index] = Double(weightGradient[index]) + weightDecay * scale * parameters[index]
    }
    for j in 0..<k { gradient[k * d + j] = biasGradient[j] }
    return (loss * scale + weightDecay / 2 * penalty, gradient)
  }

  /// Minimises the objective from `weight` [K, d] and `bias` [K] (the head's current values).
  ///
  /// Backbone features differ in scale by orders of magnitude (post-ReLU means from 0 to several
  /// units), which makes the problem ill-conditioned and L-BFGS slow when λ is small. The
  /// minimisation therefore runs in standardized coordinates, an exact change of variables: with
  /// μ_j, σ_j each feature's mean and deviation, x̃ = (x - μ)/σ, u = W σ and c = b + W μ give the
  /// same logits (u x̃ + c = W x + b), and the penalty λ/2 Σ (u_kj/σ_j)² is the same λ/2 ||W||².
  /// The minimiser is the same; the stopping test uses the gradient in the original coordinates,
  /// ∂f/∂W_kj = σ_j ∂F/∂u_kj + μ_j ∂F/∂c_k and ∂f/∂b_k = ∂F/∂c_k.
  public func fit(
    features: UnsafePointer<Float>, labels: UnsafePointer<Float>, count n: Int, dimension d: Int, outputs k: Int,
    weight: [Float], bias: [Float]
  ) -> Fit {
    var mean = [Double](repeating: 0, count: d)
    var deviation = [Double](repeating: 0, count: d)
    for i in 0..<n { for j in 0..<d { mean[j] += Double(features[i * d + j]) } }
    for j in 0..<d { mean[j] /= Double(max(n, 1)) }
    for i in 0..<n {
      for j in 0..<d {
        let centred = Double(features[i * d + j]) - mean[j]
        deviation[j] += centred * centred
      }
    }
    // A constant feature (a dead unit) keeps its scale: only its penalty acts on its weight.
    for j in 0..<d { deviation[j] = (deviation[j] / Double(max(n, 1))).squareRoot() }
    for j in 0..<d where !(deviation[j] > 1e-12) { deviation[j] = 1 }
    var standardized = [Float](repeating: 0, count: n * d)
    for i in 0..<n {
      for j in 0..<d { standardized[i * d + j] = Float((Double(features[i * d + j]) - mean[j]) / deviation[j]) }
    }
    let penaltyScale = deviation.map { 1 / ($0 * $0) }
    func evaluate(_ x: [Double]) -> (Double, [Double]) {
      standardized.withUnsafeBufferPointer {
        objective(x, features: $0.baseAddress!, labels: labels, count: n, dimension: d, outputs: k, penaltyScale: penaltyScale)
      }
    }
    /// The gradient in the original coordinates (W, b) from the one in (u, c).
    func original(_ g: [Double]) -> [Double] {
      var result = g
      for row in 0..<k {
        for j in 0..<d { result[row * d + j] = deviation[j] * g[row * d + j] + mean[j] * g[k * d + row] }
      }
      return result
    }
    var x = [Double](repeating: 0, count: k * d + k)
    for row in 0..<k {
      var shift = Double(bias[row])
      for j in 0..<d {
        x[row * d + j] = Double(weight[row * d + j]) * deviation[j]
        shift += Double(weight[row * d + j]) * mean[j]
      }
      x[k * d + row] = shift
    }
    var (f, g) = evaluate(x)
    var losses = [f]
    var history: [(s: [Double], y: [Double], rho: Double)] = []
    var iterations = 0
    var stalled = false
    func largest(_ v: [Double]) -> Double { v.reduce(0) { max($0, abs($1)) } }
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    while largest(original(g)) > gradientTolerance && iterations < maxIterations {
      // The two-loop recursion: p = -H g, H the L-BFGS inverse-Hessian estimate.
      var q = g
      var alphas: [Double] = []
      for pair in history.reversed() {
        let alpha = pair.rho * dot(pair.s, q)
        alphas.append(alpha)
        for i in q.indices { q[i] -= alpha * pair.y[i] }
      }
      if let last = history.last {
        let gamma = dot(last.s, last.y) / dot(last.y, last.y)
        for i in q.indices { q[i] *= gamma }
      } else {
        // The first step: a steepest-descent step of unit length.
        let norm = dot(g, g).squareRoot()
        for i in q.indices { q[i] /= max(norm, 1e-300) }
      }
      for (pair, alpha) in zip(history, alphas.reversed()) {
        let beta = pair.rho * dot(pair.y, q)
        for i in q.indices { q[i] += (alpha - beta) * pair.s[i] }
      }
      let direction = q.map { -$0 }
      var slope = dot(g, direction)
      var descent = direction
      if slope >= 0 {
        // Not a descent direction (rounding in a long history): restart from the gradient.
        history.removeAll()
        descent = g.map { -$0 }
        slope = -dot(g, g)
      }
      // Backtracking until the Armijo condition holds.
      var step = 1.0
      var candidate = x
      var next = (f, g)
      var accepted = false
      for _ in 0..<40 {
        for i in x.indices { candidate[i] = x[i] + step * descent[i] }
        next = evaluate(candidate)
        if next.0 <= f + 1e-4 * step * slope { accepted = true; break }
        step /= 2
      }
      iterations += 1
      guard accepted else {
        stalled = true
        break
      }
      let s = zip(candidate, x).map { $0 - $1 }
      let y = zip(next.1, g).map { $0 - $1 }
      let curvature = dot(s, y)
      if curvature > 1e-12 * dot(y, y).squareRoot() * dot(s, s).squareRoot() {
        history.append((s, y, 1 / curvature))
        if history.count > memory { history.removeFirst() }
      }
      x = candidate
      (f, g) = next
      losses.append(f)
    }
    let gradientNorm = largest(original(g))
    let stop: Stop = gradientNorm <= gradientTolerance ? .gradient : stalled ? .stalled : .iterations
    let converged = stop == .gradient || (stop == .stalled && gradientNorm <= 100 * gradientTolerance)
    // Back to the original coordinates: W = u / σ, b = c - W μ.
    var solvedWeight = [Float](repeating: 0, count: k * d)
    var solvedBias = [Float](repeating: 0, count: k)
    for row in 0..<k {
      var shift = x[k * d + row]
      for j in 0..<d {
        let w = x[row * d + j] / deviation[j]
        solvedWeight[row * d + j] = Float(w)
        shift -= w * mean[j]
      }
      solvedBias[row] = Float(shift)
    }
    return Fit(
      weight: solvedWeight, bias: solvedBias, loss: f, gradientNorm: gradientNorm,
      iterations: iterations, stop: stop, converged: converged, losses: losses)
  }
}

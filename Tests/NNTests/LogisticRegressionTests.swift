// The frozen head's solver against Newton's method in Double on a small fixed-feature problem.
import Foundation
import NN
import Support
import Tensors
import XCTest

final class LogisticRegressionTests: XCTestCase {
  /// Features [n, d] from a seeded generator, labels from a noisy logistic model per output.
  /// With `scales` and `offsets` (d each), feature j is offsets[j] + scales[j] x (uniform in ±1)
  /// and the true weights are divided by scales[j]: the same problem, badly conditioned.
  func problem(n: Int, d: Int, k: Int, seed: UInt64, scales: [Float]? = nil, offsets: [Float]? = nil) -> (features: [Float], labels: [Float]) {
    var rng = SplitMix64(seed: seed)
    let unit = (0..<(n * d)).map { _ in rng.uniform() * 2 - 1 }
    let features = unit.indices.map { (offsets?[$0 % d] ?? 0) + (scales?[$0 % d] ?? 1) * unit[$0] }
    let truth = (0..<(k * d)).map { index in (rng.uniform() * 2 - 1) * 3 / (scales?[index % d] ?? 1) }
    var labels = [Float](repeating: 0, count: n * k)
    for i in 0..<n {
      for j in 0..<k {
        var z: Float = j == 0 ? -1.5 : 0.3
        for f in 0..<d { z += (features[i * d + f] - (offsets?[f] ?? 0)) * truth[j * d + f] }
        labels[i * k + j] = rng.uniform() < 1 / (1 + exp(-z)) ? 1 : 0
      }
    }
    return (features, labels)
  }

  /// Newton's method on one output's regression, all in Double, to a gradient of 1e-13: the
  /// minimiser of 1/(n K) Σ_i [softplus(z_i) - y_i z_i] + λ/2 ||w||², z_i = x_i·w + b.
  func newton(features: [Float], labels: [Float], n: Int, d: Int, k: Int, output j: Int, lambda: Double) -> (w: [Double], b: Double, loss: Double) {
    var theta = [Double](repeating: 0, count: d + 1)
    let scale = 1 / Double(n * k)
    func row(_ i: Int) -> [Double] { (0..<d).map { Double(features[i * d + $0]) } + [1] }
    var loss = 0.0
    for _ in 0..<100 {
      var gradient = [Double](repeating: 0, count: d + 1)
      var hessian = [Double](repeating: 0, count: (d + 1) * (d + 1))
      loss = 0
      for i in 0..<n {
        let x = row(i)
        let z = zip(x, theta).reduce(0) { $0 + $1.0 * $1.1 }
        let y = Double(labels[i * k + j])
        loss += (max(z, 0) - y * z + log1p(exp(-abs(z)))) * scale
        let p = 1 / (1 + exp(-z))
        for a in 0...d {
          gradient[a] += (p - y) * x[a] * scale
          for b in 0...d { hessian[a * (d + 1) + b] += p * (1 - p) * x[a] * x[b] * scale }
        }
      }
      for a in 0..<d {
        loss += lambda / 2 * theta[a] * theta[a]
        gradient[a] += lambda * theta[a]
        hessian[a * (d + 1) + a] += lambda
      }
      if gradient.map(abs).max()! < 1e-13 { break }
      // Solve H step = gradient by Gaussian elimination with partial pivoting.
      let m = d + 1
      var system = hessian
      var right = gradient
      for column in 0..<m {
        let pivot = (column..<m).max { abs(system[$0 * m + column]) < abs(system[$1 * m + column]) }!
        if pivot != column {
          for c in 0..<m { system.swapAt(column * m + c, pivot * m + c) }
          right.swapAt(column, pivot)
        }
        for r in (column + 1)..<m {
          let factor = system[r * m + column] / system[column * m + column]
          for c in column..<m { system[r * m + c] -= factor * system[column * m + c] }
          right[r] -= factor * right[column]
        }
      }
      var step = [Double](repeating: 0, count: m)
      for r in stride(from: m - 1, through: 0, by: -1) {
        var sum = right[r]
        for c in (r + 1)..<m { sum -= system[r * m + c] * step[c] }
        step[r] = sum / system[r * m + r]
      }
      for a in 0..<m { theta[a] -= step[a] }
    }
    return (Array(theta[0..<d]), theta[d], loss)
  }

  func testFitReachesTheConvergedLoss() throws {
    let (n, d, k) = (600, 6, 3)
    let (features, labels) = problem(n: n, d: d, k: k, seed: 11)
    for lambda in [1e-2, 1e-4] {
      let solver = LogisticRegression(weightDecay: lambda)
      // From a head like a fresh one: small random weights.
      var rng = SplitMix64(seed: 3)
      let fit = features.withUnsafeBufferPointer { x in
        labels.withUnsafeBufferPointer { y in
          solver.fit(features: x.baseAddress!, labels: y.baseAddress!, count: n, dimension: d, outputs: k,
            weight: (0..<(k * d)).map { _ in (rng.uniform() - 0.5) * 0.2 }, bias: [0.1, -0.1, 0])
        }
      }
      var reference = 0.0
      var worstWeight = 0.0
      for j in 0..<k {
        let exact = newton(features: features, labels: labels, n: n, d: d, k: k, output: j, lambda: lambda)
        reference += exact.loss
        for f in 0..<d { worstWeight = max(worstWeight, abs(Double(fit.weight[j * d + f]) - exact.w[f])) }
        worstWeight = max(worstWeight, abs(Double(fit.bias[j]) - exact.b))
      }
      print(String(format: "lambda %.0e: L-BFGS %d iterations, loss %.10f, Newton %.10f (difference %.1e), largest weight difference %.1e",
        lambda, fit.iterations, fit.loss, reference, fit.loss - reference, worstWeight))
      XCTAssertTrue(fit.converged, "largest gradient \(fit.gradientNorm) after \(fit.iterations) iterations")
      // The objective comes from fp32 logits (|z| up to ~5, 2^-24 |z| each): its value is good
      // to ~1e-7, and a gradient below the 1e-6 tolerance is ~1e-12 / lambda above the minimum.
      // The weights are within the gradient over the Hessian's smallest eigenvalue (~0.02:
      // p(1 - p) ~ 0.2 times the features' variance 1/3, over K = 3), ~5e-5; 2e-3 also allows
      // a stalled stop, at a gradient up to 40 times the tolerance.
      XCTAssertEqual(fit.loss, reference, accuracy: 1e-6)
      XCTAssertGreaterThanOrEqual(fit.loss, reference - 1e-6, "no point is below the minimum (beyond float rounding)")
      XCTAssertLessThan(worstWeight, 2e-3)
      XCTAssertEqual(fit.losses.first! > fit.loss, true, "the fit moved downhill")
    }
  }

  /// Features like a backbone's after ReLU: scales from 0.01 to 30 and offsets up to 5, with a
  /// weak penalty. The change of variables to standardized features keeps L-BFGS fast (the plain
  /// iteration needs over a thousand steps here) and the minimiser exact.
  func testBadlyScaledFeaturesConvergeToTheSameMinimum() throws {
    let (n, d, k) = (800, 6, 2)
    let scales: [Float] = [0.01, 0.3, 1, 4, 30, 0.05]
    let offsets: [Float] = [0.02, 1, 0, 5, 40, 0.1]
    let (features, labels) = problem(n: n, d: d, k: k, seed: 21, scales: scales, offsets: offsets)
    let lambda = 1e-5
    let solver = LogisticRegression(weightDecay: lambda, maxIterations: 400)
    let fit = features.withUnsafeBufferPointer { x in
      labels.withUnsafeBufferPointer { y in
        solver.fit(features: x.baseAddress!, labels: y.baseAddress!, count: n, dimension: d, outputs: k,
          weight: [Float](repeating: 0, count: k * d), bias: [0, 0])
      }
    }
    var reference = 0.0
    var worstLogit = 0.0
    for j in 0..<k {
      let exact = newton(features: features, labels: labels, n: n, d: d, k: k, output: j, lambda: lambda)
      reference += exact.loss
      // Weights of tiny-scale features are large and loosely determined; the logits are what the
      // head computes, so they are compared.
      for i in 0..<n {
        var solved = Double(fit.bias[j])
        var truth = exact.b
        for f in 0..<d {
          solved += Double(fit.weight[j * d + f]) * Double(features[i * d + f])
          truth += exact.w[f] * Double(features[i * d + f])
        }
        worstLogit = max(worstLogit, abs(solved - truth))
      }
    }
    print(String(format: "badly scaled: L-BFGS %d iterations (%@), loss %.10f, Newton %.10f, largest logit difference %.1e",
      fit.iterations, fit.stop.rawValue, fit.loss, reference, worstLogit))
    XCTAssertTrue(fit.converged, "largest gradient \(fit.gradientNorm) after \(fit.iterations) iterations")
    // The loss as above. The logits are what the data determines (curvature ~p(1 - p) / K ~ 0.1
    // along them): a gradient of 1e-6, or 100 times that if stalled, moves them by ~1e-3 at
    // most; 0.05 is far below the logits' own spread (the truth's weights are up to 3).
    XCTAssertEqual(fit.loss, reference, accuracy: 1e-6)
    XCTAssertLessThan(worstLogit, 0.05)
  }

  /// The gradient the solver follows against central differences of its own objective.
  func testObjectiveGradientMatchesFiniteDifferences() throws {
    let (n, d, k) = (50, 4, 2)
    let (features, labels) = problem(n: n, d: d, k: k, seed: 5)
    let solver = LogisticRegression(weightDecay: 0.05)
    var rng = SplitMix64(seed: 9)
    let x = (0..<(k * d + k)).map { _ in Double(rng.uniform() - 0.5) }
    features.withUnsafeBufferPointer { f in
      labels.withUnsafeBufferPointer { y in
        // Plain, and with per-column penalty scales (the standardized coordinates' objective).
        for scale in [nil, [0.5, 2, 10, 1] as [Double]] {
          func value(_ p: [Double]) -> Double {
            solver.objective(p, features: f.baseAddress!, labels: y.baseAddress!, count: n, dimension: d, outputs: k, penaltyScale: scale).value
          }
          let (_, gradient) = solver.objective(x, features: f.baseAddress!, labels: y.baseAddress!, count: n, dimension: d, outputs: k, penaltyScale: scale)
          for index in x.indices {
            var plus = x
            var minus = x
            plus[index] += 1e-3
            minus[index] -= 1e-3
            // The objective's logits are fp32 (the parameters rounded to fp32 too): ~2^-24 |z| of
            // noise per logit, ~1.5e-9 on the mean over n K = 100 terms, ~1e-6 over 2e-3.
            // Truncation, (1e-3)^2 / 6 x |f'''|, is below 1e-7.
            XCTAssertEqual(gradient[index], (value(plus) - value(minus)) / 2e-3, accuracy: 2e-5, "parameter \(index), scales \(String(describing: scale))")
          }
        }
      }
    }
  }
}

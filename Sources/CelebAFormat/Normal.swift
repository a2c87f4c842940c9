// The standard normal and bivariate normal distributions, for labels with CelebA's statistics.
import Foundation

/// The x with P(Z <= x) = probability, by bisection on erfc: exact to double precision and
/// only needed once per attribute.
package func standardNormalQuantile(_ probability: Double) -> Double {
  var low = -10.0
  var high = 10.0
  for _ in 0..<100 {
    let middle = (low + high) / 2
    if 0.5 * erfc(-middle / 2.0.squareRoot()) < probability { low = middle } else { high = middle }
  }
  return (low + high) / 2
}

/// P(X > h, Y > k) for standard normals X, Y with correlation rho, by Sheppard's formula
/// P(X <= a, Y <= b) = Phi(a) Phi(b) + 1/(2 pi) * integral over t in [0, asin rho] of
/// exp(-(a^2 + b^2 - 2 a b sin t) / (2 cos^2 t)) dt, whose integrand stays bounded as |rho|
/// approaches 1 (where the usual integral over rho has a singularity). Composite Simpson with
/// 64 intervals is accurate far below the 1e-4 that label rates need.
package func bivariateNormalUpperOrthant(_ h: Double, _ k: Double, correlation rho: Double) -> Double {
  let a = -h
  let b = -k
  let phiA = 0.5 * erfc(-a / 2.0.squareRoot())
  let phiB = 0.5 * erfc(-b / 2.0.squareRoot())
  let end = asin(max(-1, min(1, rho)))
  let intervals = 64
  let step = end / Double(intervals)
  func integrand(_ t: Double) -> Double {
    let c = cos(t)
    guard c > 1e-12 else { return 0 }
    return exp(-(a * a + b * b - 2 * a * b * sin(t)) / (2 * c * c))
  }
  var sum = integrand(0) + integrand(end)
  for i in 1..<intervals {
    sum += (i % 2 == 1 ? 4 : 2) * integrand(Double(i) * step)
  }
  return phiA * phiB + sum * step / 3 / (2 * Double.pi)
}

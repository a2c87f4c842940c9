// Synthetic CelebA labels: a Gaussian copula thresholded at CelebA's marginal quantiles, with
// the latent correlations solved so that the 0/1 labels have CelebA's correlation matrix.
import CelebAFormat
import Foundation
import Support
import Tensors

/// Male is the strongest shared factor of CelebA's labels (Wearing_Lipstick -0.80, Heavy_Makeup
/// -0.67, No_Beard -0.52 with it), and the hair colours are (nearly) exclusive categories. One
/// Gaussian copula over all 40 attributes reaches neither: the pairwise latent correlations it
/// would need are far from positive definite (three hair colours would each need about -1 with
/// the others), and repairing them loses 0.1-0.25 of the strongest correlations. So the model
/// is a mixture of Gaussian copulas over groups g = (Male, hair colour), with the hair colour
/// one of Black, Blond, Brown, Gray or none:
///
/// - P(g) follows from the rates and the correlations of Male with each colour, since
///   P(a and b) = p[a] p[b] + r[a, b] sigma[a] sigma[b]; so Male's and the colours' rates and
///   their correlations with each other are CelebA's (the colours exclusive).
/// - Every other attribute a has a rate per group, logit P(a | male, hair) = alpha[male] +
///   beta[hair] (beta[none] = 0), fitted by alternating bisections so that its joint rates with
///   Male, with not-Male and with each colour are CelebA's: every correlation with Male or a
///   hair colour comes out exact.
/// - Given g, a is present when its latent z[a] > Phi^-1(1 - P(a | g)), with z ~ N(0, R) in all
///   groups. R[a, b] is solved by bisection so that the mixture's joint rate of a and b is
///   CelebA's; the correlations left for R are small, and the little that is not positive
///   definite is repaired with the nearest correlation matrix.
public struct CelebALabelModel: Sendable {
  public let attributeCount: Int
  public let positiveRates: [Double]
  /// The groups g: the probability of each, the labels it fixes (Male and the hair colours),
  /// and the latent thresholds of the other attributes, `thresholds[a]` (unused for fixed ones).
  let groups: [(weight: Double, fixed: [(attribute: Int, value: Bool)], thresholds: [Double])]
  /// The latent correlation matrix R, row-major (rows of fixed attributes are unused).
  public let latentCorrelation: [Double]
  /// The lower-triangular Cholesky factor of R, row-major.
  let cholesky: [Double]

  /// The model of CelebA's labels, from the positive rates and correlations of its first
  /// 20,000 rows.
  public static let celebA = CelebALabelModel(
    positiveRates: CelebA.positiveRates, correlations: CelebA.correlations, root: CelebA.index(of: "Male")!,
    exclusive: ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"].map { CelebA.index(of: $0)! })

  /// `root` is a binary attribute and `exclusive` a set of attributes of which at most one is
  /// present; the groups are their combinations.
  public init(positiveRates p: [Double], correlations: [Double], root: Int, exclusive: [Int]) {
    let n = p.count
    precondition(correlations.count == n * n && root < n, "correlations must be \(n) x \(n)")
    attributeCount = n
    positiveRates = p
    func joint(_ a: Int, _ b: Int) -> Double {
      p[a] * p[b] + correlations[a * n + b] * (p[a] * (1 - p[a]) * p[b] * (1 - p[b])).squareRoot()
    }
    let levels = exclusive.count + 1
    // weight[m * levels + h]: P(Male = m, hair = h), h == exclusive.count for none.
    var weight = [Double](repeating: 0, count: 2 * levels)
    for (h, colour) in exclusive.enumerated() {
      weight[levels + h] = max(joint(colour, root), 1e-9)
      weight[h] = max(p[colour] - joint(colour, root), 1e-9)
    }
    for m in 0..<2 {
      let coloured = weight[(m * levels)..<(m * levels + exclusive.count)].reduce(0, +)
      weight[m * levels + exclusive.count] = max((m == 1 ? p[root] : 1 - p[root]) - coloured, 1e-9)
    }
    let fixed = Set([root] + exclusive)
    let free = (0..<n).filter { !fixed.contains($0) }
    var rates = [[Double]](repeating: [Double](repeating: 0, count: n), count: 2 * levels)
    for a in free {
      let byMale = [p[a] - joint(a, root), joint(a, root)]
      let byColour = exclusive.map { joint(a, $0) }
      let fitted = Self.fitLogLinear(weight: weight, levels: levels, byMale: byMale, byColour: byColour)
      for g in 0..<(2 * levels) { rates[g][a] = fitted[g] }
    }
    var groups: [(weight: Double, fixed: [(attribute: Int, value: Bool)], thresholds: [Double])] = []
    for m in 0..<2 {
      for h in 0..<levels {
        let g = m * levels + h
        let labels = [(root, m == 1)] + exclusive.enumerated().map { ($0.element, $0.offset == h) }
        groups.append((weight[g], labels, rates[g].map { standardNormalQuantile(1 - $0) }))
      }
    }
    let total = groups.reduce(0) { $0 + $1.weight }
    groups = groups.map { ($0.weight / total, $0.fixed, $0.thresholds) }
    self.groups = groups
    var latent = [Double](repeating: 0, count: n * n)
    for a in 0..<n { latent[a * n + a] = 1 }
    for a in free {
      for b in free where b < a {
        let rho = Self.latentCorrelation(forJoint: joint(a, b)) { rho in
          groups.reduce(0) { sum, group in
            sum + group.weight
              * bivariateNormalUpperOrthant(group.thresholds[a], group.thresholds[b], correlation: rho)
          }
        }
        latent[a * n + b] = rho
        latent[b * n + a] = rho
      }
    }
    latentCorrelation = nearestCorrelationMatrix(latent, size: n, floor: 1e-3)
    cholesky = choleskyFactor(latentCorrelation, size: n)
  }

  /// P(a | male, hair) = sigmoid(alpha[male] + beta[hair]), beta[none] = 0, with the joint rates
  /// `byMale[m]` = P(a, male = m) and `byColour[h]` = P(a, hair = h): each parameter in turn
  /// is solved by bisection with the others fixed (iterative proportional fitting of the
  /// log-linear model), which converges because each margin is monotone in its parameter.
  static func fitLogLinear(weight: [Double], levels: Int, byMale: [Double], byColour: [Double]) -> [Double] {
    var alpha = [0.0, 0.0]
    var beta = [Double](repeating: 0, count: levels)
    func rate(_ m: Int, _ h: Int) -> Double { 1 / (1 + exp(-(alpha[m] + beta[h]))) }
    func solve(_ target: Double, _ total: Double, _ margin: (Double) -> Double) -> Double {
      let goal = min(max(target, total * 1e-6), total * (1 - 1e-6))
      var low = -30.0
      var high = 30.0
      for _ in 0..<60 {
        let middle = (low + high) / 2
        if margin(middle) < goal { low = middle } else { high = middle }
      }
      return (low + high) / 2
    }
    for _ in 0..<60 {
      for m in 0..<2 {
        let total = (0..<levels).reduce(0) { $0 + weight[m * levels + $1] }
        alpha[m] = solve(byMale[m], total) { value in
          (0..<levels).reduce(0) { $0 + weight[m * levels + $1] / (1 + exp(-(value + beta[$1]))) }
        }
      }
      for h in 0..<(levels - 1) {
        beta[h] = solve(byColour[h], weight[h] + weight[levels + h]) { value in
          (0..<2).reduce(0) { $0 + weight[$1 * levels + h] / (1 + exp(-(alpha[$1] + value))) }
        }
      }
    }
    return (0..<(2 * levels)).map { rate($0 / levels, $0 % levels) }
  }

  /// The latent correlation at which `jointRate(rho)` (increasing in rho) equals `joint`; the
  /// nearest attainable one when the target is beyond what thresholded normals can reach.
  static func latentCorrelation(forJoint joint: Double, jointRate: (Double) -> Double) -> Double {
    var low = -0.9999
    var high = 0.9999
    for _ in 0..<50 {
      let middle = (low + high) / 2
      if jointRate(middle) < joint { low = middle } else { high = middle }
    }
    return (low + high) / 2
  }

  /// One image's labels, from a generator seeded for that image (so rows do not depend on
  /// which thread draws them, nor on how many rows there are).
  public func sample(_ rng: inout SplitMix64, into labels: UnsafeMutablePointer<Bool>) {
    let n = attributeCount
    var u = Double(rng.uniform())
    var g = 0
    while g < groups.count - 1 && u >= groups[g].weight {
      u -= groups[g].weight
      g += 1
    }
    var noise = [Double](repeating: 0, count: n)
    for a in 0..<n { noise[a] = Double(rng.normal()) }
    let thresholds = groups[g].thresholds
    cholesky.withUnsafeBufferPointer { factor in
      for a in 0..<n {
        var z = 0.0
        for b in 0...a { z += factor[a * n + b] * noise[b] }
        labels[a] = z > thresholds[a]
      }
    }
    for (attribute, value) in groups[g].fixed { labels[attribute] = value }
  }

  /// Labels of `count` images, `labels[image * attributeCount + attribute]`; image `i` uses
  /// the generator `SplitMix64(seed: rowSeed(seed, i))`.
  public func sample(count: Int, seed: UInt64) -> [Bool] {
    var labels = [Bool](repeating: false, count: count * attributeCount)
    labels.withUnsafeMutableBufferPointer { buffer in
      let base = buffer.baseAddress!
      Parallel.forEach(count, grain: 256) { range in
        for image in range {
          var rng = SplitMix64(seed: rowSeed(seed, image))
          sample(&rng, into: base + image * attributeCount)
        }
      }
    }
    return labels
  }
}

/// The seed of row `row` of a dataset made with `seed`: rows get unrelated streams.
public func rowSeed(_ seed: UInt64, _ row: Int) -> UInt64 {
  var mixer = SplitMix64(seed: seed ^ 0xA076_1D64_78BD_642F)
  return mixer.next() ^ (UInt64(row) &* 0xE703_7ED1_A0B4_28DB)
}

/// The correlation matrix nearest `matrix` in the Frobenius norm with eigenvalues at least
/// `floor`, by Higham's alternating projections (2002) with Dykstra's correction: onto the
/// positive semidefinite matrices (eigenvalues clipped), then onto unit diagonal, repeated. One
/// clip alone moves the strongest correlations most; the nearest matrix spreads the change.
func nearestCorrelationMatrix(_ matrix: [Double], size n: Int, floor: Double) -> [Double] {
  func clipped(_ m: [Double]) -> (matrix: [Double], changed: Bool) {
    var (values, vectors) = symmetricEigen(m, size: n)
    guard values.contains(where: { $0 < floor }) else { return (m, false) }
    for i in 0..<n { values[i] = max(values[i], floor) }
    var result = [Double](repeating: 0, count: n * n)
    for a in 0..<n {
      for b in 0..<n {
        var sum = 0.0
        for k in 0..<n { sum += vectors[a * n + k] * values[k] * vectors[b * n + k] }
        result[a * n + b] = sum
      }
    }
    return (result, true)
  }
  var y = matrix
  var correction = [Double](repeating: 0, count: n * n)
  for _ in 0..<200 {
    let r = zip(y, correction).map { $0 - $1 }
    let (x, changed) = clipped(r)
    if !changed { return y }
    correction = zip(x, r).map { $0 - $1 }
    let previous = y
    y = x
    for i in 0..<n { y[i * n + i] = 1 }
    if zip(y, previous).map({ abs($0 - $1) }).max()! < 1e-7 { break }
  }
  // The last unit-diagonal step can leave eigenvalues a hair under the floor: one final clip
  // and rescale keeps the matrix a valid correlation matrix for Cholesky.
  let x = clipped(y).matrix
  let scale = (0..<n).map { 1 / x[$0 * n + $0].squareRoot() }
  return (0..<(n * n)).map { x[$0] * scale[$0 / n] * scale[$0 % n] }
}

/// Eigenvalues and eigenvectors (as columns, row-major) of a symmetric matrix by cyclic Jacobi
/// rotations: simple and exact enough for 40 x 40.
func symmetricEigen(_ matrix: [Double], size n: Int) -> (values: [Double], vectors: [Double]) {
  var a = matrix
  var v = [Double](repeating: 0, count: n * n)
  for i in 0..<n { v[i * n + i] = 1 }
  for _ in 0..<100 {
    var off = 0.0
    for p in 0..<n { for q in (p + 1)..<n { off += a[p * n + q] * a[p * n + q] } }
    if off < 1e-22 { break }
    for p in 0..<n {
      for q in (p + 1)..<n where abs(a[p * n + q]) > 1e-300 {
        let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
        let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
        let c = 1 / (t * t + 1).squareRoot()
        let s = t * c
        for k in 0..<n {
          let akp = a[k * n + p]
          let akq = a[k * n + q]
          a[k * n + p] = c * akp - s * akq
          a[k * n + q] = s * akp + c * akq
        }
        for k in 0..<n {
          let apk = a[p * n + k]
          let aqk = a[q * n + k]
          a[p * n + k] = c * apk - s * aqk
          a[q * n + k] = s * apk + c * aqk
        }
        for k in 0..<n {
          let vkp = v[k * n + p]
          let vkq = v[k * n + q]
          v[k * n + p] = c * vkp - s * vkq
          v[k * n + q] = s * vkp + c * vkq
        }
      }
    }
  }
  return ((0..<n).map { a[$0 * n + $0] }, v)
}

/// The lower-triangular L with L L^T = matrix (positive definite).
func choleskyFactor(_ matrix: [Double], size n: Int) -> [Double] {
  var l = [Double](repeating: 0, count: n * n)
  for i in 0..<n {
    for j in 0...i {
      var sum = matrix[i * n + j]
      for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
      l[i * n + j] = i == j ? max(sum, 1e-12).squareRoot() : sum / l[j * n + j]
    }
  }
  return l
}

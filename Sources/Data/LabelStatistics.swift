// Positive rates and pairwise correlations of a table of 0/1 labels.

public struct LabelStatistics: Sendable {
  public let attributeCount: Int
  public let count: Int
  public let rates: [Double]
  /// Images with both attributes, `both[a * attributeCount + b]`.
  let both: [Int]

  /// `labels[image * attributeCount + attribute]`.
  public init(labels: [Bool], attributeCount n: Int) {
    attributeCount = n
    let count = labels.count / n
    self.count = count
    var positives = [Int](repeating: 0, count: n)
    var both = [Int](repeating: 0, count: n * n)
    labels.withUnsafeBufferPointer { table in
      for image in 0..<count {
        let row = table.baseAddress! + image * n
        for a in 0..<n where row[a] {
          positives[a] += 1
          for b in 0..<n where row[b] { both[a * n + b] += 1 }
        }
      }
    }
    rates = positives.map { Double($0) / Double(max(count, 1)) }
    self.both = both
  }

  /// The Pearson correlation of the two attributes' 0/1 labels (the phi coefficient).
  public func correlation(_ a: Int, _ b: Int) -> Double {
    let p = rates[a]
    let q = rates[b]
    let joint = Double(both[a * attributeCount + b]) / Double(count)
    let spread = (p * (1 - p) * q * (1 - q)).squareRoot()
    return spread > 0 ? (joint - p * q) / spread : 0
  }
}

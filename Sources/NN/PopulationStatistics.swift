// The population statistics of a BatchNorm's input over many batches, for recalibration
// (bn-recal): while a BatchNorm with `population` set runs in training mode, each batch's sums of
// its input are added here, in Double, instead of being blended into an exponential moving
// average. Images may be split into groups (the two values of a sensitive attribute), so that the
// statistics can be the equal-weight mixture of the groups rather than the pooled ones.
import Tensors

/// Which group each image of the next batch belongs to; one value shared by every layer's
/// `PopulationSums` of a model.
public final class BatchGroups {
  /// The group of each image of the batch, in batch order.
  public var ofImage: [Int] = []

  public init() {}
}

/// Σx and Σx² of a BatchNorm's input per channel, and the elements per channel, per group.
public final class PopulationSums {
  public let channels: Int
  public let groups: Int
  /// Per group: Σx (C), Σx² (C), elements (1).
  public var values: [Double]
  /// The batch's groups; nil when `groups` is 1.
  public let batchGroups: BatchGroups?
  /// Per image of the batch: Σx (C), Σx² (C).
  private var perImage: UnsafeMutablePointer<Double>?
  private var perImageCapacity = 0

  public init(channels: Int, groups: BatchGroups? = nil, groupCount: Int = 1) {
    precondition(groups != nil || groupCount == 1, "several groups need the batch's groups")
    self.channels = channels
    self.groups = groupCount
    self.batchGroups = groups
    values = [Double](repeating: 0, count: groupCount * (2 * channels + 1))
  }

  deinit { perImage?.deallocate() }

  public var stride: Int { 2 * channels + 1 }

  /// Adds a batch: `x` is the BatchNorm's input and `totals` its local sums (Σx, Σx², rows) as
  /// the BatchNorm computed them, which is all one group needs.
  func add(_ x: FeatureMap, totals: [Double]) {
    let c = channels
    guard groups > 1, let batchGroups else {
      for k in 0..<(2 * c) { values[k] += totals[k] }
      values[2 * c] += totals[2 * c]
      return
    }
    precondition(batchGroups.ofImage.count == x.batch, "\(batchGroups.ofImage.count) image groups for a batch of \(x.batch)")
    let rowsPerImage = x.height * x.width
    if perImageCapacity < 2 * x.batch * c {
      perImage?.deallocate()
      perImageCapacity = 2 * x.batch * c
      perImage = .allocate(capacity: perImageCapacity)
    }
    let sums = perImage!
    Parallel.forEach(x.batch) { images in
      for n in images {
        let s = sums + n * 2 * c
        let q = s + c
        s.update(repeating: 0, count: 2 * c)
        for r in (n * rowsPerImage)..<((n + 1) * rowsPerImage) {
          let p = x.data + r * c
          for ch in 0..<c {
            let v = Double(p[ch])
            s[ch] += v
            q[ch] += v * v
          }
        }
      }
    }
    for n in 0..<x.batch {
      let g = batchGroups.ofImage[n]
      precondition(g >= 0 && g < groups, "image group \(g) of \(groups)")
      let s = sums + n * 2 * c
      for k in 0..<(2 * c) { values[g * stride + k] += s[k] }
      values[g * stride + 2 * c] += Double(rowsPerImage)
    }
  }

  /// Elements (per channel) in group `g`.
  public func count(group g: Int) -> Double { values[g * stride + 2 * channels] }

  /// Per channel, the mean and the (biased) variance: of all images pooled (`balanced` false), or
  /// of the equal-weight mixture of the groups (`balanced` true: the mean of the group means, and
  /// the mixture's variance, which adds the spread of the group means to their variances).
  /// Nil if a group (or the pool) is empty.
  public func statistics(balanced: Bool) -> (mean: [Double], variance: [Double])? {
    let c = channels
    var mean = [Double](repeating: 0, count: c)
    var square = [Double](repeating: 0, count: c)
    let used = balanced ? Array(0..<groups) : [0]
    if balanced {
      for g in used {
        let n = count(group: g)
        guard n > 0 else { return nil }
        for ch in 0..<c {
          mean[ch] += values[g * stride + ch] / n / Double(groups)
          square[ch] += values[g * stride + c + ch] / n / Double(groups)
        }
      }
    } else {
      var n = 0.0
      for g in 0..<groups {
        n += count(group: g)
        for ch in 0..<c {
          mean[ch] += values[g * stride + ch]
          square[ch] += values[g * stride + c + ch]
        }
      }
      guard n > 0 else { return nil }
      for ch in 0..<c {
        mean[ch] /= n
        square[ch] /= n
      }
    }
    return (mean, (0..<c).map { max(square[$0] - mean[$0] * mean[$0], 0) })
  }
}

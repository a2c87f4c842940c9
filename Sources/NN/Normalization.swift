// BatchNorm2d (optionally with the ReLU that follows it fused in) as a forward/backward pair.
import Tensors

/// Sums per-channel statistics over every replica: the only thing a synchronized BatchNorm
/// changes. `Distributed` provides the MPI implementation; without one, statistics are local.
public protocol StatisticsReducer: AnyObject {
  /// Replaces `values[0..<count]` with their sum over all replicas.
  func sumAcrossReplicas(_ values: UnsafeMutablePointer<Double>, count: Int)
}

/// The gradient at a residual join's output, to be masked by the join's ReLU (see
/// `BatchNorm2d.backward(_:join:)`).
public struct JoinGradient: Equatable {
  /// The join's output, ReLU(main + shortcut).
  public let output: UnsafePointer<Float>
  /// Where the masked gradient goes (`ResidualAddReLU.maskedGradient`).
  public let masked: UnsafeMutablePointer<Float>
}

/// Per-channel sums a BatchNorm needs, gathered while another layer makes the tensor they are
/// taken over, instead of by a pass of their own: Σx and Σx² of its input in forward
/// (`BatchNorm2d.inputSums()`), or Σdy and Σdy·x of its output gradient in backward, masked by
/// its ReLU or by a residual join (`BatchNorm2d.gradientSums(join:)`). The caller gets the value
/// from the BatchNorm, hands `observer` to the layer that makes the tensor, and passes the value
/// to the BatchNorm's `forward` or `backward`. Sums that do not cover the whole tensor, or that
/// were made before the BatchNorm's last forward, are not used: the BatchNorm then makes its own
/// pass (and says so in `statisticsWereObserved` / `gradientSumsWereObserved`).
public final class ChannelSums {
  public enum Purpose: Sendable { case input, gradient }
  public let purpose: Purpose
  unowned let layer: BatchNorm2d
  /// The join whose mask the gradient sums apply (and whose masked gradient they store).
  var join: JoinGradient?
  /// The layer's forward count when these sums were started.
  var generation = -1
  /// Per worker slot: Σa (C), Σa·b (C), elements observed (1): `stride` Doubles.
  var slots: UnsafeMutablePointer<Double>?
  var capacity = 0
  var slotCount = 0
  var stride: Int { 2 * layer.channels + 1 }

  init(_ layer: BatchNorm2d, purpose: Purpose) {
    self.layer = layer
    self.purpose = purpose
  }

  deinit { slots?.deallocate() }

  /// Made once per value, so that a step allocates no closure.
  public private(set) lazy var observer: ProductObserver = { [unowned self] worker, a, ldc, rows, columns in
    self.layer.observe(worker: worker, a, ldc: ldc, rows: rows, columns: columns, into: self)
  }

  /// Zeroed sums for one slot per worker.
  func reset(join: JoinGradient? = nil) {
    let size = Parallel.workers * stride
    if capacity < size {
      slots?.deallocate()
      slots = .allocate(capacity: size)
      capacity = size
    }
    slots!.update(repeating: 0, count: size)
    slotCount = Parallel.workers
    self.join = join
    generation = layer.forwardCount
  }

  /// The slots' sums into `totals` ([Σa (C), Σa·b (C), rows]), if they cover every element of
  /// `rows` rows.
  func total(rows: Int, into totals: inout [Double]) -> Bool {
    guard let slots else { return false }
    let c = layer.channels
    var observed = 0.0
    for slot in 0..<slotCount { observed += slots[slot * stride + 2 * c] }
    guard observed == Double(rows * c) else { return false }
    if totals.count != 2 * c + 1 { totals = [Double](repeating: 0, count: 2 * c + 1) }
    for ch in 0..<(2 * c) {
      var sum = 0.0
      for slot in 0..<slotCount { sum += slots[slot * stride + ch] }
      totals[ch] = sum
    }
    totals[2 * c] = Double(rows)
    return true
  }
}

public final class BatchNorm2d {
  public let channels: Int
  public let weight: Parameter
  public let bias: Parameter
  public let runningMean: Parameter
  public let runningVariance: Parameter
  public let batchesTracked: Parameter
  public let appliesReLU: Bool
  public var momentum: Float = 0.1
  public var epsilon: Float = 1e-5
  /// Batch statistics (and running-statistics updates) when true, running statistics when false.
  public var training = true
  public var computesInputGradient = true
  public var reducer: StatisticsReducer?
  /// Set for a recalibration pass: each training-mode forward adds its input's sums (this
  /// replica's share, before the reduction across replicas) here.
  public var population: PopulationSums?

  private var input: FeatureMap?
  private var usedBatchStatistics = true
  private var output = Workspace()
  /// Where `backward` writes dx (see `ResNet`'s sharing of these).
  public var gradientBuffer = SharedWorkspace()
  /// mean[C], inverse standard deviation[C] of the last forward.
  private var mean = Workspace()
  private var inverseStd = Workspace()
  /// Per-channel coefficients of the elementwise passes: forward's scale and shift (kept for
  /// backward's ReLU mask), then backward's three (5C floats).
  private var coefficients = Workspace()
  /// Float partial sums of `accumulate`, 2C per worker.
  private var runSums = Workspace()
  /// [sum a (C), sum a*b (C), count]: what is reduced across replicas.
  private var totals = [Double]()
  /// Local sum(dy) and sum(dy * xhat) of the last backward (2C).
  private var localGradientSums = [Double]()

  public init(
    _ registry: ParameterRegistry, name: String, channels: Int, appliesReLU: Bool = false,
    group: ParameterGroup = .backbone
  ) {
    self.channels = channels
    self.appliesReLU = appliesReLU
    weight = registry.parameter("\(name).weight", shape: [channels], kind: .normalization, group: group)
    bias = registry.parameter("\(name).bias", shape: [channels], kind: .normalization, group: group)
    runningMean = registry.buffer("\(name).running_mean", shape: [channels], group: group)
    runningVariance = registry.buffer("\(name).running_var", shape: [channels], group: group)
    batchesTracked = registry.buffer("\(name).num_batches_tracked", shape: [], group: group)
  }

  public func initialize(zeroGamma: Bool = false) {
    weight.value.update(repeating: zeroGamma ? 0 : 1, count: channels)
    bias.value.update(repeating: 0, count: channels)
    runningMean.value.update(repeating: 0, count: channels)
    runningVariance.value.update(repeating: 1, count: channels)
    batchesTracked.value[0] = 0
  }

  /// What `accumulate` masks its `a` by before summing.
  private enum SumMask {
    case none
    /// This layer's ReLU: a counts where b * scale + shift > 0 (forward's scale and shift, so
    /// forward's mask, recomputed from the BatchNorm input instead of read from its output).
    case relu(scale: UnsafePointer<Float>, shift: UnsafePointer<Float>)
    /// A residual join: a counts where the join's output > 0; the masked a is stored.
    case join(JoinGradient)
  }

  /// Adds sum(a) and sum(a * b) over `rows` x `columns` of the [*, C] matrices `a` (masked by
  /// `mask`) and `b` into worker slot `slot`, with the count of elements. Float partial sums
  /// over runs of 32 rows keep the loops vectorised (four rows at a time without a mask: a
  /// quarter of the loads and stores of the partial sums); the runs are added in Double, so
  /// the error does not grow with the batch.
  private func accumulate(
    slot: Int, _ a: UnsafePointer<Float>, times b: UnsafePointer<Float>, mask: SumMask,
    rows: Range<Int>, columns: Range<Int>, into target: ChannelSums
  ) {
    let c = channels
    precondition(slot < target.slotCount, "sums for worker \(slot) of \(target.slotCount)")
    let sums = target.slots! + slot * target.stride
    let fs = runSums.tensor!.data + slot * 2 * c
    let fp = fs + c
    var row = rows.lowerBound
    while row < rows.upperBound {
      let end = min(row + 32, rows.upperBound)
      for ch in columns {
        fs[ch] = 0
        fp[ch] = 0
      }
      var r = row
      if case .none = mask {
        while r + 4 <= end {
          let p0 = a + r * c, q0 = b + r * c
          let p1 = p0 + c, q1 = q0 + c, p2 = p1 + c, q2 = q1 + c, p3 = p2 + c, q3 = q2 + c
          for ch in columns {
            fs[ch] += (p0[ch] + p1[ch]) + (p2[ch] + p3[ch])
            fp[ch] += (p0[ch] * q0[ch] + p1[ch] * q1[ch]) + (p2[ch] * q2[ch] + p3[ch] * q3[ch])
          }
          r += 4
        }
      }
      for r in r..<end {
        let pa = a + r * c
        let pb = b + r * c
        switch mask {
        case .join(let join):
          let py = join.output + r * c
          let pm = join.masked + r * c
          for ch in columns {
            let value = pa[ch]  // read unconditionally: a select, not a masked load
            let v = py[ch] > 0 ? value : 0
            pm[ch] = v
            fs[ch] += v
            fp[ch] += v * pb[ch]
          }
        case .relu(let sc, let sh):
          for ch in columns {
            let value = pa[ch]
            let v = pb[ch] * sc[ch] + sh[ch] > 0 ? value : 0
            fs[ch] += v
            fp[ch] += v * pb[ch]
          }
        case .none:
          for ch in columns {
            fs[ch] += pa[ch]
            fp[ch] += pa[ch] * pb[ch]
          }
        }
      }
      for ch in columns {
        sums[ch] += Double(fs[ch])
        sums[c + ch] += Double(fp[ch])
      }
      row = end
    }
    sums[2 * c] += Double(rows.count * columns.count)
  }

  /// The same sums as a pass of its own over all `rows`, split over the workers; the result is
  /// in `totals`: [sum a (C), sum a*b (C), rows].
  private func reduceColumns(_ a: UnsafePointer<Float>, times b: UnsafePointer<Float>, mask: SumMask, rows: Int) {
    start(ownPass)
    Parallel.forEachChunk(rows, grain: 64) { chunk, range in
      accumulate(slot: chunk, a, times: b, mask: mask, rows: range, columns: 0..<channels, into: ownPass)
    }
    _ = ownPass.total(rows: rows, into: &totals)
  }

  private func reduceAcrossReplicas() {
    guard let reducer else { return }
    totals.withUnsafeMutableBufferPointer { reducer.sumAcrossReplicas($0.baseAddress!, count: $0.count) }
  }

  /// Forwards run so far: sums started before the last forward are stale.
  private(set) var forwardCount = 0
  /// The sums of this layer's own passes, and the two it hands out (each reused every step).
  private lazy var ownPass = ChannelSums(self, purpose: .input)
  private lazy var inputSumsValue = ChannelSums(self, purpose: .input)
  private lazy var gradientSumsValue = ChannelSums(self, purpose: .gradient)

  /// `sums` zeroed for a new tensor, with the Float scratch of `accumulate` sized for its slots.
  @discardableResult
  private func start(_ sums: ChannelSums, join: JoinGradient? = nil) -> ChannelSums {
    sums.reset(join: join)
    _ = runSums.pointer(count: sums.slotCount * 2 * channels)
    return sums
  }

  /// Whether the last batch statistics came from observed sums rather than a pass of their own.
  public private(set) var statisticsWereObserved = false

  /// Sums of the next forward's input, for the layer that makes it (its observer); nil when
  /// this layer uses running statistics.
  public func inputSums() -> ChannelSums? {
    guard training else { return nil }
    return start(inputSumsValue)
  }

  /// Sums of the next backward's output gradient, for the layer that makes it: dy and dy * x,
  /// masked by this layer's ReLU, or by `join` (whose masked gradient they also store). Nil
  /// before a forward, or for a join on a layer that applies its own ReLU.
  public func gradientSums(join: JoinGradient? = nil) -> ChannelSums? {
    guard input != nil, join == nil || !appliesReLU else { return nil }
    return start(gradientSumsValue, join: join)
  }

  /// An observer's call: a part of the input (or of dy) is final.
  fileprivate func observe(
    worker: Int, _ a: UnsafePointer<Float>, ldc: Int, rows: Range<Int>, columns: Range<Int>, into sums: ChannelSums
  ) {
    precondition(ldc == channels, "sums of \(channels) channels observed on rows of \(ldc)")
    switch sums.purpose {
    case .input: accumulate(slot: worker, a, times: a, mask: .none, rows: rows, columns: columns, into: sums)
    case .gradient: accumulate(slot: worker, a, times: input!.data, mask: gradientMask(sums.join), rows: rows, columns: columns, into: sums)
    }
  }

  /// Whether `sums` are this layer's, for `purpose`, current, and complete over `rows` rows; if
  /// so they are in `totals`.
  private func usable(_ sums: ChannelSums?, _ purpose: ChannelSums.Purpose, rows: Int) -> Bool {
    guard let sums, sums.layer === self, sums.purpose == purpose, sums.generation == forwardCount else { return false }
    return sums.total(rows: rows, into: &totals)
  }

  private func gradientMask(_ join: JoinGradient?) -> SumMask {
    if let join { return .join(join) }
    guard appliesReLU else { return .none }
    let scale = UnsafePointer(coefficients.tensor!.data)
    return .relu(scale: scale, shift: scale + channels)
  }

  /// Whether the last backward's sums came from an observer rather than a pass of their own.
  public private(set) var gradientSumsWereObserved = false

  /// Per-channel mean and inverse standard deviation of `x` over the batch (over the global
  /// batch when a reducer is set), and the running-statistics update. This is the one place
  /// statistics are computed; synchronized BatchNorm only supplies the reducer.
  public func batchStatistics(_ x: FeatureMap, sums: ChannelSums? = nil) {
    let c = channels
    statisticsWereObserved = usable(sums, .input, rows: x.pixels)
    if !statisticsWereObserved { reduceColumns(x.data, times: x.data, mask: .none, rows: x.pixels) }
    population?.add(x, totals: totals)
    reduceAcrossReplicas()
    let count = totals[2 * c]
    let m = mean.pointer(count: c)
    let s = inverseStd.pointer(count: c)
    let unbias = count > 1 ? count / (count - 1) : 1
    let mom = Double(momentum)
    for ch in 0..<c {
      let mu = totals[ch] / count
      let variance = max(totals[c + ch] / count - mu * mu, 0)
      m[ch] = Float(mu)
      s[ch] = Float(1 / (variance + Double(epsilon)).squareRoot())
      runningMean.value[ch] = Float((1 - mom) * Double(runningMean.value[ch]) + mom * mu)
      runningVariance.value[ch] = Float(
        (1 - mom) * Double(runningVariance.value[ch]) + mom * variance * unbias)
    }
    batchesTracked.value[0] += 1
  }

  private func runningStatistics() {
    let m = mean.pointer(count: channels)
    let s = inverseStd.pointer(count: channels)
    for ch in 0..<channels {
      m[ch] = runningMean.value[ch]
      s[ch] = 1 / (runningVariance.value[ch] + epsilon).squareRoot()
    }
  }

  // x: [N, H, W, C] -> y: [N, H, W, C]
  /// With `sums` (`inputSums()`, observed while x was made), the batch statistics come from
  /// them instead of a pass over x.
  public func forward(_ x: FeatureMap, sums: ChannelSums? = nil) -> FeatureMap { normalize(x, joining: nil, sums: sums) }

  /// y = ReLU(BatchNorm(x) + shortcut): a residual join folded into this layer's elementwise
  /// pass (the sum is never written out). Backward is plain BatchNorm's: the caller masks the
  /// gradient by `y > 0` first.
  public func forward(_ x: FeatureMap, joining shortcut: FeatureMap, sums: ChannelSums? = nil) -> FeatureMap {
    precondition(!appliesReLU && shortcut.count == x.count, "a joined BatchNorm takes a shortcut of its own shape")
    return normalize(x, joining: UnsafePointer(shortcut.data), sums: sums)
  }

  private func normalize(_ x: FeatureMap, joining shortcut: UnsafePointer<Float>?, sums: ChannelSums?) -> FeatureMap {
    precondition(x.channels == channels, "batchnorm expects \(channels) channels, got \(x.channels)")
    input = x
    usedBatchStatistics = training
    if training { batchStatistics(x, sums: sums) } else { statisticsWereObserved = false; runningStatistics() }
    // Sums started before this forward (for a backward) are stale from here on.
    forwardCount += 1
    let c = channels
    let y = output.pointer(count: x.count)
    let m = mean.tensor!.data
    let s = inverseStd.tensor!.data
    let sc = coefficients.pointer(count: 5 * c)
    let sh = sc + c
    for ch in 0..<c {
      sc[ch] = weight.value[ch] * s[ch]
      sh[ch] = bias.value[ch] - m[ch] * sc[ch]
    }
    let relu = appliesReLU
    Parallel.forEach(x.pixels, grain: 64) { range in
      for r in range {
        let px = x.data + r * c
        let py = y + r * c
        if let shortcut {
          let ps = shortcut + r * c
          for ch in 0..<c { py[ch] = max(px[ch] * sc[ch] + sh[ch] + ps[ch], 0) }
        } else if relu {
          for ch in 0..<c { py[ch] = max(px[ch] * sc[ch] + sh[ch], 0) }
        } else {
          for ch in 0..<c { py[ch] = px[ch] * sc[ch] + sh[ch] }
        }
      }
    }
    return x.with(data: y)
  }

  /// dy: [N, H, W, C] (the gradient of the ReLU's output when fused). Accumulates dgamma and
  /// dbeta when they train; returns dx when `computesInputGradient`. With `join`, dy is the
  /// gradient at a residual join's output: this layer masks it by the join's ReLU on its way
  /// and stores the masked gradient (the join's own backward) for the join's other branch.
  /// With `sums` (`gradientSums(join:)`, observed while dy was made), the sums over dy come
  /// from them instead of a pass of their own.
  public func backward(_ dy: UnsafePointer<Float>, join: JoinGradient? = nil, sums: ChannelSums? = nil) -> FeatureMap? {
    guard let prepared = prepareBackward(dy, join: join, sums: sums), let x = input else { return nil }
    let dx = gradientBuffer.pointer(count: x.count)
    Parallel.forEach(x.pixels, grain: 64) { range in prepared.inputGradient(rows: range, into: dx + range.lowerBound * channels) }
    return x.with(data: dx)
  }

  /// Backward's first half: the sums over dy (observed, or a pass of their own), dgamma and
  /// dbeta, and the coefficients of dx. Returns, when dx is wanted, what makes it (a part of the
  /// rows at a time and in any order: `PreparedInputGradient.inputGradient(rows:into:)`), valid
  /// until this layer's next forward or backward.
  public func prepareBackward(_ dy: UnsafePointer<Float>, join: JoinGradient? = nil, sums: ChannelSums? = nil) -> PreparedInputGradient? {
    guard let x = input else { preconditionFailure("backward before forward") }
    precondition(join == nil || !appliesReLU, "a BatchNorm with its own ReLU does not also mask by a join")
    let c = channels
    let rows = x.pixels
    let m = mean.tensor!.data
    let s = inverseStd.tensor!.data
    // sum(dy) and sum(dy * x) over the local batch give dbeta and dgamma:
    // sum(dy * xhat) = invstd * (sum(dy * x) - mean * sum(dy)).
    // The observed sums are used only if they were made with this mask and cover all of dy.
    gradientSumsWereObserved = sums?.join == join && usable(sums, .gradient, rows: rows)
    if !gradientSumsWereObserved { reduceColumns(dy, times: x.data, mask: gradientMask(join), rows: rows) }
    // From here on dy is the masked gradient.
    let masked = join.map { UnsafePointer($0.masked) } ?? dy
    if localGradientSums.count != 2 * c { localGradientSums = [Double](repeating: 0, count: 2 * c) }
    for ch in 0..<c {
      localGradientSums[ch] = totals[ch]
      localGradientSums[c + ch] = Double(s[ch]) * (totals[c + ch] - Double(m[ch]) * totals[ch])
    }
    if weight.requiresGradient {
      for ch in 0..<c { weight.gradient[ch] += Float(localGradientSums[c + ch]) }
    }
    if bias.requiresGradient {
      for ch in 0..<c { bias.gradient[ch] += Float(localGradientSums[ch]) }
    }
    guard computesInputGradient else { return nil }

    // dx = a * dy + b * x + d per channel (dy masked by the ReLU).
    let a = coefficients.tensor!.data + 2 * c
    let b = a + c
    let d = b + c
    if usedBatchStatistics {
      for ch in 0..<(2 * c) { totals[ch] = localGradientSums[ch] }
      reduceAcrossReplicas()
      let count = totals[2 * c]
      for ch in 0..<c {
        let g = Double(weight.value[ch]) * Double(s[ch])
        let meanDy = totals[ch] / count
        let meanDyXhat = totals[c + ch] / count
        a[ch] = Float(g)
        b[ch] = Float(-g * Double(s[ch]) * meanDyXhat)
        d[ch] = Float(-g * meanDy + g * Double(s[ch]) * Double(m[ch]) * meanDyXhat)
      }
    } else {
      for ch in 0..<c {
        a[ch] = weight.value[ch] * s[ch]
        b[ch] = 0
        d[ch] = 0
      }
    }
    return PreparedInputGradient(
      dy: masked, x: x.data, channels: c, coefficients: UnsafePointer(coefficients.tensor!.data), appliesReLU: appliesReLU)
  }
}

/// dx of a BatchNorm, as its backward's first half left it: dy (masked by the join's ReLU), x,
/// and the coefficients of dx = a * dy + b * x + d per channel (with the layer's own ReLU, the
/// scale and shift that decide its mask).
public struct PreparedInputGradient {
  let dy: UnsafePointer<Float>
  let x: UnsafePointer<Float>
  let channels: Int
  /// scale, shift, a, b, d: `channels` each.
  let coefficients: UnsafePointer<Float>
  let appliesReLU: Bool

  /// dx of `rows`, written from `dx` on (row `rows.lowerBound` at `dx`). Rows may be made in any
  /// order, from any worker.
  public func inputGradient(rows: Range<Int>, into dx: UnsafeMutablePointer<Float>) {
    let c = channels
    let scale = coefficients
    let a = scale + 2 * c
    let b = a + c
    let d = b + c
    // The ReLU passed where forward's x * scale + shift was positive: the same expression on
    // the same floats, so the same mask, without reading the output back.
    let relu = appliesReLU ? (scale: scale, shift: scale + c) : nil
    for r in rows {
      let pdy = dy + r * c
      let px = x + r * c
      let pdx = dx + (r - rows.lowerBound) * c
      if let (sc, sh) = relu {
        for ch in 0..<c {
          let gradient = pdy[ch]  // read unconditionally: a select, not a masked load
          let g = px[ch] * sc[ch] + sh[ch] > 0 ? gradient : 0
          pdx[ch] = a[ch] * g + b[ch] * px[ch] + d[ch]
        }
      } else {
        for ch in 0..<c { pdx[ch] = a[ch] * pdy[ch] + b[ch] * px[ch] + d[ch] }
      }
    }
  }
}

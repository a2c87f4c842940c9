// The scaling model: what a collective costs on a cluster's links (a latency-bandwidth fit per
// collective, with each algorithm's dependence on the rank count), and one training step
// replayed from a trace of the collectives it issues (TracingCommunicator) with those costs.
// `fairtune bench --comm` measures a profile, `bench --predict-ranks` and `plan` use it.
import Data
import Distributed
import NN
import Support
import Tensors
import Foundation

/// The collectives the trainer issues.
public enum Collective: String, Codable, CaseIterable, Sendable {
  /// Gradient buckets, synchronized BatchNorm's sums, SimCLR's gradient parts, the loss.
  case allReduce = "allreduce"
  /// SimCLR's embeddings of every rank (the global negatives).
  case allGather = "allgather"
  /// The parameters at the start of a run.
  case broadcast
}

/// t = alpha x (latency terms) + beta x (byte terms), in seconds and seconds per byte.
public struct LinkCost: Codable, Equatable, Sendable {
  public var alpha: Double
  public var beta: Double

  public init(alpha: Double, beta: Double) {
    self.alpha = alpha
    self.beta = beta
  }

  /// From a nominal link: `latency` seconds a message, `bandwidth` bytes per second.
  public init(latency: Double, bandwidth: Double) {
    self.init(alpha: latency, beta: 1 / bandwidth)
  }
}

extension Collective {
  /// The algorithms MPI libraries choose between for this collective, each as (latency terms,
  /// byte terms) for `bytes` (the buffer of an all-reduce or broadcast, everything an all-gather
  /// receives) on `p` ranks. The time is the cheapest algorithm's.
  ///
  /// - all-reduce: recursive doubling, log2 p rounds each moving the whole buffer (small
  ///   messages), or a ring, reduce-scatter then all-gather, 2(p - 1) steps of bytes / p (large);
  /// - all-gather: recursive doubling (Bruck), log2 p rounds, (p - 1) / p of the result received;
  /// - broadcast: a binomial tree, log2 p rounds of the whole buffer, or scatter then ring
  ///   all-gather (p - 1 + log2 p steps, twice (p - 1) / p of the buffer).
  public func terms(bytes: Int, ranks p: Int) -> [(latency: Double, bytes: Double)] {
    guard p > 1 else { return [(0, 0)] }
    let n = Double(bytes)
    let rounds = ceil(log2(Double(p)))
    let q = Double(p - 1)
    switch self {
    case .allReduce:
      return [(rounds, rounds * n), (2 * q, 2 * q / Double(p) * n)]
    case .allGather:
      return [(rounds, q / Double(p) * n)]
    case .broadcast:
      return [(rounds, rounds * n), (q + rounds, 2 * q / Double(p) * n)]
    }
  }

  public func seconds(bytes: Int, ranks: Int, cost: LinkCost) -> Double {
    terms(bytes: bytes, ranks: ranks).map { $0.latency * cost.alpha + $0.bytes * cost.beta }.min()!
  }
}

/// What the links of a cluster cost, per collective: fitted to measurements (`bench --comm`) or
/// stated (`--latency-us`, `--bandwidth-gbps`).
public struct CollectiveProfile: Codable, Equatable, Sendable {
  /// One timing: the median seconds of `collective` on `bytes` over `ranks` ranks.
  public struct Point: Codable, Equatable, Sendable {
    public var collective: Collective
    public var bytes: Int
    public var ranks: Int
    public var seconds: Double
    /// What issues a collective of this size ("gradient bucket", "batchnorm", ...).
    public var use: String?

    public init(collective: Collective, bytes: Int, ranks: Int, seconds: Double, use: String? = nil) {
      self.collective = collective
      self.bytes = bytes
      self.ranks = ranks
      self.seconds = seconds
      self.use = use
    }
  }

  public var costs: [Collective: LinkCost]
  public var points: [Point]
  /// Where the figures come from (the hosts and link, or "nominal").
  public var source: String

  public init(costs: [Collective: LinkCost], points: [Point] = [], source: String) {
    self.costs = costs
    self.points = points
    self.source = source
  }

  /// Every collective at a link of `latency` seconds and `bandwidth` bytes per second.
  public static func nominal(latency: Double, bandwidth: Double) -> CollectiveProfile {
    let cost = LinkCost(latency: latency, bandwidth: bandwidth)
    return CollectiveProfile(
      costs: Dictionary(uniqueKeysWithValues: Collective.allCases.map { ($0, cost) }),
      source: String(format: "nominal: %.0f us latency, %.3g Gb/s", latency * 1e6, 8 * bandwidth / 1e9))
  }

  /// The modelled time of `collective` on `bytes` over `ranks` ranks: the fitted formula, times
  /// what the measurements say of the formula at this size (their ratio to it, interpolated in
  /// log bytes between the measured sizes, held beyond them). A real link departs from
  /// alpha + beta x bytes (a token bucket passes a burst at full speed; small messages pay
  /// more than one latency); the measured ratio carries that to every rank count.
  public func seconds(_ collective: Collective, bytes: Int, ranks: Int) -> Double {
    guard ranks > 1, bytes >= 0 else { return 0 }
    let cost = costs[collective] ?? costs[.allReduce] ?? LinkCost(alpha: 0, beta: 0)
    return collective.seconds(bytes: bytes, ranks: ranks, cost: cost) * correction(collective, bytes: bytes)
  }

  /// Measured over fitted, at `bytes` (1 where nothing was measured).
  public func correction(_ collective: Collective, bytes: Int) -> Double {
    let table = corrections[collective] ?? []
    guard let first = table.first, let last = table.last else { return 1 }
    let x = log(Double(max(bytes, 1)))
    if x <= first.0 { return first.1 }
    if x >= last.0 { return last.1 }
    let i = table.firstIndex { $0.0 >= x }!
    let (x0, r0) = table[i - 1], (x1, r1) = table[i]
    return r0 + (r1 - r0) * (x - x0) / (x1 - x0)
  }

  /// Per collective, (log bytes, mean of measured / fitted over the points of that size), by size.
  private var corrections: [Collective: [(Double, Double)]] {
    var result: [Collective: [(Double, Double)]] = [:]
    for collective in Collective.allCases {
      guard let cost = costs[collective] else { continue }
      let mine = points.filter { $0.collective == collective && $0.ranks > 1 && $0.seconds > 0 }
      let bySize = Dictionary(grouping: mine, by: \.bytes)
      result[collective] = bySize.compactMap { bytes, group -> (Double, Double)? in
        let ratios = group.compactMap { p -> Double? in
          let fitted = collective.seconds(bytes: p.bytes, ranks: p.ranks, cost: cost)
          return fitted > 0 ? p.seconds / fitted : nil
        }
        return ratios.isEmpty ? nil : (log(Double(max(bytes, 1))), ratios.reduce(0, +) / Double(ratios.count))
      }.sorted { $0.0 < $1.0 }
    }
    return result
  }

  /// Fits alpha and beta of each collective to `points`, minimising the squared relative error
  /// (sizes span bytes to megabytes: a plain least squares would fit the largest only). The
  /// algorithm of each point is the one the current fit finds cheapest; a few rounds settle it.
  public static func fit(_ points: [Point], source: String) -> CollectiveProfile {
    var costs: [Collective: LinkCost] = [:]
    for collective in Collective.allCases {
      let mine = points.filter { $0.collective == collective && $0.ranks > 1 && $0.seconds > 0 }
      guard !mine.isEmpty else { continue }
      var cost = fitLine(mine.map { p in (p.collective.terms(bytes: p.bytes, ranks: p.ranks)[0], p.seconds) })
      for _ in 0..<8 {
        let chosen = mine.map { p -> ((latency: Double, bytes: Double), Double) in
          let terms = p.collective.terms(bytes: p.bytes, ranks: p.ranks)
          return (terms.min { $0.latency * cost.alpha + $0.bytes * cost.beta < $1.latency * cost.alpha + $1.bytes * cost.beta }!, p.seconds)
        }
        let next = fitLine(chosen)
        if next == cost { break }
        cost = next
      }
      costs[collective] = cost
    }
    return CollectiveProfile(costs: costs, points: points, source: source)
  }

  /// Non-negative alpha, beta minimising sum(((a alpha + b beta) / t - 1)^2).
  static func fitLine(_ rows: [((latency: Double, bytes: Double), Double)]) -> LinkCost {
    var saa = 0.0, sab = 0.0, sbb = 0.0, sa = 0.0, sb = 0.0
    for ((a0, b0), t) in rows {
      let a = a0 / t, b = b0 / t
      saa += a * a
      sab += a * b
      sbb += b * b
      sa += a
      sb += b
    }
    let det = saa * sbb - sab * sab
    if det > 1e-12 * max(saa * sbb, 1e-300) {
      let alpha = (sa * sbb - sb * sab) / det
      let beta = (sb * saa - sa * sab) / det
      if alpha >= 0 && beta >= 0 { return LinkCost(alpha: alpha, beta: beta) }
    }
    // On the boundary: the better of latency alone and bandwidth alone.
    func error(_ c: LinkCost) -> Double {
      rows.reduce(0) { s, r in let e = (r.0.latency * c.alpha + r.0.bytes * c.beta) / r.1 - 1; return s + e * e }
    }
    let onlyAlpha = LinkCost(alpha: saa > 0 ? max(sa / saa, 0) : 0, beta: 0)
    let onlyBeta = LinkCost(alpha: 0, beta: sbb > 0 ? max(sb / sbb, 0) : 0)
    return error(onlyAlpha) <= error(onlyBeta) ? onlyAlpha : onlyBeta
  }
}

extension Collective: CodingKeyRepresentable {}

/// One training step as rank 0 of a traced group ran it: the collectives and when they were
/// issued, and how long the step took with collectives that cost nothing.
public struct StepTrace: Codable, Sendable {
  public var events: [TracingCommunicator.Event]
  public var seconds: Double
  public var ranks: Int

  public init(events: [TracingCommunicator.Event], seconds: Double, ranks: Int) {
    self.events = events
    self.seconds = seconds
    self.ranks = ranks
  }

  /// Rank 0's share of a global batch of `globalBatch` images on the trace's ranks.
  public func imagesPerRank(globalBatch: Int) -> Int { DistributedSampler.share(of: globalBatch, rank: 0, ranks: ranks) }

  /// The same step with its computation `factor` times as long (another per-rank batch, or
  /// slower cores); the collectives are unchanged.
  public func scalingCompute(by factor: Double) -> StepTrace {
    var copy = self
    for i in copy.events.indices { copy.events[i].at *= factor }
    copy.seconds *= factor
    return copy
  }
}

/// What a step waits on, in seconds.
public struct StepPrediction: Equatable, Sendable {
  public var seconds: Double
  /// Computing (the traced step's own time).
  public var compute: Double
  /// Waiting for gradient buckets whose all-reduce backward did not hide.
  public var gradient: Double
  /// Synchronized BatchNorm's sums (forward and backward), including the wait behind bytes
  /// already on the link.
  public var batchNorm: Double
  /// SimCLR's all-gather of the embeddings and the all-reduce of their gradients.
  public var negatives: Double
  /// Anything else (the loss's sum).
  public var other: Double

  /// The largest part of the step, "compute" included.
  public var bottleneck: String {
    compute >= largestWait.seconds ? "compute" : largestWait.name
  }

  /// The largest of the waits: what most holds the step above its compute.
  public var largestWait: (name: String, seconds: Double) {
    let parts = [("exposed gradient all-reduce", gradient), ("BatchNorm sync", batchNorm), ("SimCLR all-gather", negatives), ("other collectives", other)]
    return parts.max { $0.1 < $1.1 }!
  }
}

public enum StepSimulation {
  /// Replays `trace` as `ranks` ranks would run it over links that cost `profile`: computation
  /// between the calls as traced; one link per rank that carries one collective at a time, in
  /// the order they were issued (a started bucket's bytes are ahead of a later BatchNorm sum's,
  /// as on a real queue); a blocking call waits for its own turn and completion; a wait for a
  /// bucket waits until its all-reduce is through.
  ///
  /// The trace holds whole buckets in fp32, as fifo issues them. `wire` .bf16 halves the
  /// gradients' bytes. `schedule` .priority lets a blocking collective (BatchNorm's sums, the
  /// loss's) go ahead of the gradient bytes on the link: it starts when issued, and every
  /// gradient all-reduce not yet through moves back by its duration (chunks in flight ahead of it,
  /// at most two of 512 KB, are neglected).
  public static func predict(
    _ trace: StepTrace, ranks: Int, profile: CollectiveProfile, schedule: CollectiveSchedule = .fifo, wire: GradientWire = .fp32
  ) -> StepPrediction {
    var now = 0.0
    var linkFree = 0.0
    var last = 0.0
    var finished: [Int: Double] = [:]
    var result = StepPrediction(seconds: 0, compute: trace.seconds, gradient: 0, batchNorm: 0, negatives: 0, other: 0)
    let gathers = trace.events.contains { $0.kind == .allGather }
    func charge(_ event: TracingCommunicator.Event, _ seconds: Double) {
      switch (event.source, event.kind) {
      case ("gradient", _): result.gradient += seconds
      case ("batchnorm", _): result.batchNorm += seconds
      case (_, .allGather): result.negatives += seconds
      case (_, .allReduce) where gathers: result.negatives += seconds
      default: result.other += seconds
      }
    }
    for event in trace.events {
      now += max(0, event.at - last)
      last = max(last, event.at)
      switch event.kind {
      case .startAllReduce:
        let begin = max(now, linkFree)
        let bytes = event.source == "gradient" && wire == .bf16 ? event.bytes / 2 : event.bytes
        linkFree = begin + profile.seconds(.allReduce, bytes: bytes, ranks: ranks)
        if let id = event.id { finished[id] = linkFree }
      case .wait:
        let end = max(now, event.id.flatMap { finished[$0] } ?? now)
        charge(event, end - now)
        now = end
      case .allReduce, .allGather, .broadcast, .barrier:
        let collective: Collective = event.kind == .allGather ? .allGather : event.kind == .broadcast ? .broadcast : .allReduce
        let cost = profile.seconds(collective, bytes: event.bytes, ranks: ranks)
        if schedule == .priority {
          // Ahead of the queued gradient bytes, which wait for it.
          let end = now + cost
          if linkFree > now { linkFree += cost }
          for (id, done) in finished where done > now { finished[id] = done + cost }
          charge(event, cost)
          now = end
        } else {
          let begin = max(now, linkFree)
          let end = begin + cost
          linkFree = end
          charge(event, end - now)
          now = end
        }
      }
    }
    now += max(0, trace.seconds - last)
    result.seconds = now
    return result
  }

  /// The sweep's efficiency on `ranks` ranks: rank 0 coordinates (with one rank, it runs the
  /// trials itself), the others form groups of `groupSize` that run `trials` equal trials in
  /// waves (the last wave leaves groups idle); each trial's own steps run at `stepEfficiency`.
  public static func sweepEfficiency(trials: Int, ranks: Int, groupSize: Int, stepEfficiency: Double) -> Double {
    guard ranks > 1 else { return 1 }
    let groups = max(1, (ranks - 1) / groupSize)
    let waves = (trials + groups - 1) / groups
    let busy = Double(trials) / Double(waves * groups)
    return busy * Double(groups * groupSize) / Double(ranks) * stepEfficiency
  }

  /// The median time of an evaluation forward pass (BatchNorm on running statistics, no head
  /// beyond the 40 outputs) of `spec`'s model over `batch` random images, after one untimed pass.
  public static func forwardSeconds(_ spec: ModelSpec, batch: Int, steps: Int) throws -> Double {
    let model = try ResNet(spec.configuration(classes: 40), seed: 1)
    model.setBatchNormTraining(false)
    let size = spec.imageSize
    let images = Tensor(shape: [batch, size, size, 3])
    var rng = SplitMix64(seed: 3)
    for i in 0..<images.count { images.data[i] = rng.normal() }
    let input = FeatureMap(data: images.data, batch: batch, height: size, width: size, channels: 3)
    var times: [Double] = []
    for step in 0...steps {
      let start = Clock.now()
      _ = model.forward(input)
      if step > 0 { times.append(Clock.now() - start) }
    }
    return times.sorted()[times.count / 2]
  }

  /// The median-length step of `model` (strategy and convolution already set) as rank 0 of
  /// `ranks` ranks runs it: its share of a global batch of `globalBatch` random images (two
  /// views each for SimCLR), every collective recorded; `warmup` untimed steps first.
  public static func traceStep(
    _ model: ResNet, objective: Objective, globalBatch: Int, ranks: Int, imageSize size: Int, steps: Int, warmup: Int = 1,
    synchronizedBatchNorm: Bool = true, bucketBytes: Int = 25 << 20, learningRate: Float = 1e-4
  ) throws -> StepTrace {
    precondition(steps > 0 && ranks >= 1)
    let tracer = TracingCommunicator(size: ranks)
    let step = try TrainingStep.dataParallel(
      model, objective: objective, optimizer: SGD(model.registry, learningRate: learningRate, momentum: 0.9), communicator: tracer,
      // The trace records the buckets whole, as the replay model schedules them.
      settings: DataParallelSettings(synchronizedBatchNorm: synchronizedBatchNorm, bucketBytes: bucketBytes, collectives: .fifo))
    let count = DistributedSampler.share(of: globalBatch, rank: 0, ranks: ranks)
    let simclr = objective != .attributes
    let images = Tensor(shape: [(simclr ? 2 : 1) * count, size, size, 3])
    let labels = Tensor(shape: [count, model.outputDimension])
    var rng = SplitMix64(seed: 3)
    for i in 0..<images.count { images.data[i] = rng.normal() }
    for i in 0..<labels.count { labels.data[i] = rng.uniform() < 0.3 ? 1 : 0 }
    let share = TrainingBatch(images: images.data, labels: simclr ? nil : labels.data, count: count, globalCount: globalBatch)
    var traces: [StepTrace] = []
    for i in 0..<(warmup + steps) {
      tracer.mark()
      _ = try step(share, imageSize: size, globalBatch: globalBatch)
      let (events, seconds) = tracer.take()
      if i >= warmup { traces.append(StepTrace(events: events, seconds: seconds, ranks: ranks)) }
    }
    return traces.sorted { $0.seconds < $1.seconds }[traces.count / 2]
  }
}

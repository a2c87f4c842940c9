// ResNet-18/34/50 in torchvision's layout and parameter names, NHWC, forward and backward.
//
// He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016); the stride
// of a bottleneck sits on its 3x3 convolution, as in torchvision ("ResNet v1.5").
import Support
import Tensors

public enum ModelError: Error, CustomStringConvertible {
  case unknownModel(String)
  case unknownStem(String)
  case invalidWidth(Double)
  case invalidSize(String, Int)

  public var description: String {
    switch self {
    case .unknownModel(let name):
      return "unknown model '\(name)': use one of \(ResNetDepth.allCases.map(\.rawValue).joined(separator: ", "))"
    case .unknownStem(let name):
      return "unknown stem '\(name)': use imagenet or small"
    case .invalidWidth(let width):
      return "width \(width) leaves a layer with no channels: use a width of at least \(1.0 / 64)"
    case .invalidSize(let what, let value):
      return "\(what) must be positive (got \(value))"
    }
  }
}

public enum ResNetDepth: String, CaseIterable, Sendable {
  case resnet18, resnet34, resnet50

  public var layerBlockSizes: [Int] {
    switch self {
    case .resnet18: return [2, 2, 2, 2]
    case .resnet34, .resnet50: return [3, 4, 6, 3]
    }
  }

  public var usesBottleneck: Bool { self == .resnet50 }
  public var expansion: Int { usesBottleneck ? 4 : 1 }
}

public enum Stem: String, CaseIterable, Sendable {
  /// 7x7 stride-2 convolution and a 3x3 stride-2 max-pool, for 224 px images.
  case imagenet
  /// 3x3 stride-1 convolution and no max-pool, for 32-64 px images.
  case small
}

public struct ResNetConfiguration: Equatable, Sendable {
  public var depth: ResNetDepth
  public var stem: Stem
  public var width: Double
  /// Outputs of the `fc` head; nil builds no classifier.
  public var classes: Int?
  /// SimCLR's projection head instead of a classifier (pretraining).
  public var projection: ProjectionSize?
  public var inputChannels: Int

  public init(
    depth: ResNetDepth, stem: Stem = .imagenet, width: Double = 1, classes: Int? = 40,
    projection: ProjectionSize? = nil, inputChannels: Int = 3
  ) {
    self.depth = depth
    self.stem = stem
    self.width = width
    self.classes = classes
    self.projection = projection
    self.inputChannels = inputChannels
  }

  /// The widest model fairtune builds (the command line and checkpoints are held to it).
  public static let maximumWidth = 16.0

  /// Why `width` cannot build a model (nil when it can): the first layer must keep a channel,
  /// and no model is wider than `maximumWidth`. Shared by the command line and checkpoints.
  public static func widthProblem(_ width: Double) -> String? {
    guard width > 0, width <= maximumWidth else { return "must be a positive number of at most \(Int(maximumWidth)) (got \(width))" }
    guard (64 * width).rounded() >= 1 else { return "\(width) rounds the first layer to zero channels: use at least \(1.0 / 128)" }
    return nil
  }

  /// Channels of a layer whose full-width count is `base`.
  public func channels(_ base: Int) throws -> Int {
    let c = Int((Double(base) * width).rounded())
    guard width > 0, c >= 1 else { throw ModelError.invalidWidth(width) }
    return c
  }
}

/// Told during backward that every gradient at offsets >= the argument is final, so a
/// data-parallel reducer can start sending those while backward goes on.
public typealias GradientObserver = (Int) -> Void

/// The shortcut projection: 1x1 convolution with stride, then BatchNorm (`downsample.0/1`).
public final class Downsample {
  public let convolution: Conv2d
  public let batchNorm: BatchNorm2d

  init(_ registry: ParameterRegistry, inputChannels: Int, outputChannels: Int, stride: Int) {
    convolution = registry.scope("downsample") {
      Conv2d(
        registry, name: "0", inputChannels: inputChannels, outputChannels: outputChannels,
        kernelSize: 1, stride: stride, group: .shortcut)
    }
    batchNorm = registry.scope("downsample") {
      BatchNorm2d(registry, name: "1", channels: outputChannels, group: .shortcut)
    }
  }

  func forward(_ x: FeatureMap) -> FeatureMap {
    let sums = batchNorm.inputSums()
    let y = Profiler.time(.convolution) { convolution.forward(x, observer: sums?.observer) }
    return Profiler.time(.batchnorm) { batchNorm.forward(y, sums: sums) }
  }

  func backward(_ dy: UnsafePointer<Float>, join: JoinGradient? = nil, sums: ChannelSums?, observer: GradientObserver?) -> FeatureMap? {
    defer { observer?(convolution.weight.offset) }
    return backwardThrough(batchNorm, convolution, dy, join: join, sums: sums)
  }
}

/// Backward through a BatchNorm (with `sums` of dy observed while it was made, if any) and the
/// convolution that made its input; nil when no gradient goes further down. When the
/// convolution takes its dy in parts (see `Conv2d.consumesGradientInParts`), BatchNorm's dx is
/// made part by part inside the convolution's backward (and timed with it), never whole.
func backwardThrough(
  _ bn: BatchNorm2d, _ conv: Conv2d, _ dy: UnsafePointer<Float>, join: JoinGradient? = nil, sums: ChannelSums? = nil,
  addingTo target: UnsafeMutablePointer<Float>? = nil, observer: ProductObserver? = nil
) -> FeatureMap? {
  if conv.consumesGradientInParts {
    guard let prepared = Profiler.time(.batchnorm, { bn.prepareBackward(dy, join: join, sums: sums) }) else { return nil }
    return Profiler.time(.convolution) { conv.backward(.parts(prepared.inputGradient), addingTo: target, observer: observer) }
  }
  guard let d = Profiler.time(.batchnorm, { bn.backward(dy, join: join, sums: sums) }) else { return nil }
  return Profiler.time(.convolution) { conv.backward(.whole(d.data), addingTo: target, observer: observer) }
}

/// Sums of a residual unit's output gradient (or the stem's), taken while the layer above
/// makes it: by the first BatchNorm to read it, masked by the unit's join (whose masked
/// gradient it stores), and with a projection shortcut also by the main path's last BatchNorm,
/// over the masked gradient just stored, while it is still in cache.
public struct OutputGradientSums {
  /// The first reader's sums (the projection's BatchNorm, or the main path's last).
  public let first: ChannelSums
  /// The main path's last BatchNorm's, when the projection's BatchNorm reads dy first.
  public let second: ChannelSums?
  /// For the layer that makes the gradient.
  public let observer: ProductObserver

  /// One BatchNorm's sums (a unit with an identity shortcut, or the stem's).
  init(_ sums: ChannelSums) {
    first = sums
    second = nil
    observer = sums.observer
  }

  /// The projection's BatchNorm's over dy, then the main path's over the masked gradient.
  init(_ first: ChannelSums, then second: ChannelSums, masked: UnsafePointer<Float>) {
    self.first = first
    self.second = second
    let (a, b) = (first.observer, second.observer)
    observer = { worker, dy, ldc, rows, columns in
      a(worker, dy, ldc, rows, columns)
      b(worker, masked, ldc, rows, columns)
    }
  }
}

/// A chain of (convolution, BatchNorm) pairs: a residual unit's main path.
struct ConvBNChain {
  let pairs: [(conv: Conv2d, bn: BatchNorm2d)]

  /// With `shortcut`, the last BatchNorm also adds it and applies the ReLU (the residual join).
  /// Each BatchNorm's batch statistics are summed while its convolution makes its input.
  func forward(_ x: FeatureMap, joining shortcut: FeatureMap? = nil) -> FeatureMap {
    var h = x
    for (index, (conv, bn)) in pairs.enumerated() {
      let sums = bn.inputSums()
      let y = Profiler.time(.convolution) { conv.forward(h, observer: sums?.observer) }
      if let shortcut, index == pairs.count - 1 {
        h = Profiler.time(.batchnorm) { bn.forward(y, joining: shortcut, sums: sums) }
      } else {
        h = Profiler.time(.batchnorm) { bn.forward(y, sums: sums) }
      }
    }
    return h
  }

  /// With `join`, the last BatchNorm masks dy by the join (see `BatchNorm2d.backward`), using
  /// `sums` of dy if they were observed; with `target`, the first convolution adds its input
  /// gradient to it (see `Conv2d.backward`), and reports it to `inputObserver` as it is made.
  /// Each convolution's input gradient is summed on the way by the BatchNorm below it.
  func backward(
    _ dy: UnsafePointer<Float>, join: JoinGradient? = nil, sums: ChannelSums? = nil,
    addingTo target: UnsafeMutablePointer<Float>? = nil, inputObserver: ProductObserver? = nil, observer: GradientObserver?
  ) -> FeatureMap? {
    var g: UnsafePointer<Float> = dy
    var sumsOfG = sums
    var result: FeatureMap?
    for (index, (conv, bn)) in pairs.enumerated().reversed() {
      defer { observer?(conv.weight.offset) }
      let mask = index == pairs.count - 1 ? join : nil
      let into = index == 0 ? target : nil
      let below = index == 0 ? nil : pairs[index - 1].bn.gradientSums()
      let reported = index == 0 ? inputObserver : below?.observer
      guard let dx = backwardThrough(bn, conv, g, join: mask, sums: sumsOfG, addingTo: into, observer: reported) else { return nil }
      g = UnsafePointer(dx.data)
      sumsOfG = below
      result = dx
    }
    return result
  }

  /// Sets the input-gradient flags of the chain; returns whether anything in it trains.
  func configure(inputGradient: Bool) -> Bool {
    var below = inputGradient
    for (conv, bn) in pairs {
      conv.computesInputGradient = below
      below = below || conv.weight.requiresGradient
      bn.computesInputGradient = below
      below = below || bn.weight.requiresGradient || bn.bias.requiresGradient
    }
    return below
  }
}

/// A residual unit: a main path of (convolution, BatchNorm) pairs and a shortcut (the input, or
/// its 1x1 projection), joined by an add and a ReLU: y = ReLU(main(x) + shortcut(x))
/// (`Reference.residualJoin`). ResNet-18/34 use basic units (two 3x3 pairs), ResNet-50
/// bottleneck units (1x1, 3x3 with the stride, 1x1 to 4x the planes).
public final class ResidualUnit {
  public enum Kind: Sendable { case basic, bottleneck }

  public let kind: Kind
  /// The main path's pairs: `conv1`/`bn1`, `conv2`/`bn2` (and `conv3`/`bn3` in a bottleneck).
  public var main: [(conv: Conv2d, bn: BatchNorm2d)] { path.pairs }
  public let downsample: Downsample?
  private let path: ConvBNChain
  private let join = ResidualAddReLU()
  public private(set) var needsBackward = true
  private var computesInputGradient = true

  init(_ registry: ParameterRegistry, kind: Kind, inputChannels: Int, planes: Int, stride: Int) {
    self.kind = kind
    func conv(_ n: Int, _ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1) -> Conv2d {
      Conv2d(registry, name: "conv\(n)", inputChannels: cin, outputChannels: cout, kernelSize: kernel, stride: stride, padding: kernel / 2)
    }
    func bn(_ n: Int, _ channels: Int, relu: Bool) -> BatchNorm2d {
      BatchNorm2d(registry, name: "bn\(n)", channels: channels, appliesReLU: relu)
    }
    let out: Int
    switch kind {
    case .basic:
      out = planes
      path = ConvBNChain(pairs: [
        (conv(1, inputChannels, planes, kernel: 3, stride: stride), bn(1, planes, relu: true)),
        (conv(2, planes, planes, kernel: 3), bn(2, planes, relu: false)),
      ])
    case .bottleneck:
      out = planes * 4
      path = ConvBNChain(pairs: [
        (conv(1, inputChannels, planes, kernel: 1), bn(1, planes, relu: true)),
        (conv(2, planes, planes, kernel: 3, stride: stride), bn(2, planes, relu: true)),
        (conv(3, planes, out, kernel: 1), bn(3, out, relu: false)),
      ])
    }
    downsample = stride != 1 || inputChannels != out
      ? Downsample(registry, inputChannels: inputChannels, outputChannels: out, stride: stride) : nil
  }

  public var convolutions: [Conv2d] { main.map(\.conv) + (downsample.map { [$0.convolution] } ?? []) }
  public var batchNorms: [BatchNorm2d] { main.map(\.bn) + (downsample.map { [$0.batchNorm] } ?? []) }

  public func forward(_ x: FeatureMap) -> FeatureMap {
    let s = downsample?.forward(x) ?? x
    let out = path.forward(x, joining: s)
    join.adopt(out)
    return out
  }

  /// For the layer that makes this unit's output gradient: the sums its BatchNorms take of it
  /// on the way (see `OutputGradientSums`), to be passed to `backward`.
  public func outputGradientSums() -> OutputGradientSums? {
    let mask = join.maskedGradient()
    let last = main.last!.bn
    guard let downsample else { return last.gradientSums(join: mask).map(OutputGradientSums.init) }
    guard let first = downsample.batchNorm.gradientSums(join: mask) else { return nil }
    guard let second = last.gradientSums() else { return OutputGradientSums(first) }
    return OutputGradientSums(first, then: second, masked: UnsafePointer(mask.masked))
  }

  /// Returns the gradient for the unit's input when it computes one; calls `observer` each time
  /// the gradients from some parameter offset on are final, and reports the input gradient to
  /// `inputObserver` as it is made (the unit below's `outputGradientSums`). `sums` are this
  /// unit's `outputGradientSums`, observed while dy was made.
  public func backward(
    _ dy: UnsafePointer<Float>, sums: OutputGradientSums? = nil, observer: GradientObserver? = nil,
    inputObserver: ProductObserver? = nil
  ) -> FeatureMap? {
    // The join's backward (dy masked by its ReLU) is done by the first BatchNorm to read dy,
    // which stores the masked gradient in `d` for the other branch.
    let mask = join.maskedGradient()
    let d = mask.masked
    // The shortcut's parameters are registered after the main path's: doing it first completes
    // the gradients in descending offset order.
    let dShortcut = downsample.map { $0.backward(dy, join: mask, sums: sums?.first, observer: observer) } ?? nil
    // The input's gradient is the shortcut's plus the main path's: the main path's first
    // convolution adds its own into the shortcut's (into d itself for an identity shortcut,
    // which nothing reads after the main path's last BatchNorm).
    let target = computesInputGradient ? dShortcut?.data ?? d : nil
    let dMain = downsample == nil
      ? path.backward(dy, join: mask, sums: sums?.first, addingTo: target, inputObserver: inputObserver, observer: observer)
      : path.backward(UnsafePointer(d), sums: sums?.second, addingTo: target, inputObserver: inputObserver, observer: observer)
    guard computesInputGradient, let dx = dMain else { return nil }
    return dx
  }

  /// Gives this unit's layers the model's shared gradient buffers. Within a unit's backward,
  /// each BatchNorm's dx is read only by the convolution below it, and each main-path
  /// convolution's dx (the first one adds to the shortcut's instead) only by the BatchNorm
  /// below it, done before the next convolution writes its own: one buffer serves each role
  /// in every unit. The projection's dx is the unit's input gradient (the main path adds to
  /// it) and is read, last, by the unit below's first BatchNorm, before any other projection
  /// runs. The join's masked gradient is written while the unit above makes this unit's
  /// output gradient (or as this unit's backward begins) and read until the unit below has
  /// read this unit's input gradient: units next to each other need two buffers, and every
  /// other unit can reuse one (`masked`).
  func share(normalization: SharedWorkspace, chain: SharedWorkspace, shortcut: SharedWorkspace, masked: SharedWorkspace) {
    join.gradientBuffer = masked
    for (index, (conv, bn)) in main.enumerated() {
      bn.gradientBuffer = normalization
      if index > 0 { conv.gradientBuffer = chain }
    }
    downsample?.batchNorm.gradientBuffer = normalization
    downsample?.convolution.gradientBuffer = shortcut
  }

  /// Chooses which gradients backward computes, from which parameters train.
  public func configureGradients(inputGradient: Bool) {
    computesInputGradient = inputGradient
    let mainTrains = path.configure(inputGradient: inputGradient)
    var shortcutTrains = inputGradient
    if let downsample {
      shortcutTrains = ConvBNChain(pairs: [(downsample.convolution, downsample.batchNorm)])
        .configure(inputGradient: inputGradient)
    }
    needsBackward = mainTrains || shortcutTrains
  }
}

public final class ResNet {
  public let configuration: ResNetConfiguration
  public let registry = ParameterRegistry()
  public let conv1: Conv2d
  public let bn1: BatchNorm2d
  public let maxPool: MaxPool2d?
  public let layers: [[ResidualUnit]]
  public let pool = GlobalAveragePool()
  public let fc: Linear?
  public let projection: ProjectionHead?
  /// Channels of the pooled features (the input of `fc`).
  public let featureDimension: Int
  private var stemComputesInputGradient = true

  public init(_ configuration: ResNetConfiguration, seed: UInt64 = 0) throws {
    self.configuration = configuration
    let c = configuration
    guard c.inputChannels > 0 else { throw ModelError.invalidSize("input channels", c.inputChannels) }
    if let classes = c.classes, classes <= 0 { throw ModelError.invalidSize("classes", classes) }
    let registry = self.registry
    let stemChannels = try c.channels(64)
    switch c.stem {
    case .imagenet:
      conv1 = Conv2d(registry, name: "conv1", inputChannels: c.inputChannels, outputChannels: stemChannels, kernelSize: 7, stride: 2, padding: 3)
      maxPool = MaxPool2d()
    case .small:
      conv1 = Conv2d(registry, name: "conv1", inputChannels: c.inputChannels, outputChannels: stemChannels, kernelSize: 3, stride: 1, padding: 1)
      maxPool = nil
    }
    conv1.computesInputGradient = false
    bn1 = BatchNorm2d(registry, name: "bn1", channels: stemChannels, appliesReLU: true)
    var inputChannels = stemChannels
    var stages: [[ResidualUnit]] = []
    for (index, blocks) in c.depth.layerBlockSizes.enumerated() {
      let planes = try c.channels(64 << index)
      var stage: [ResidualUnit] = []
      for b in 0..<blocks {
        let stride = (index > 0 && b == 0) ? 2 : 1
        let block = registry.scope("layer\(index + 1)") {
          registry.scope("\(b)") {
            ResidualUnit(
              registry, kind: c.depth.usesBottleneck ? .bottleneck : .basic, inputChannels: inputChannels, planes: planes, stride: stride)
          }
        }
        inputChannels = planes * c.depth.expansion
        stage.append(block)
      }
      stages.append(stage)
    }
    layers = stages
    featureDimension = inputChannels
    if let size = c.projection {
      guard c.classes == nil else { throw ModelError.invalidSize("classes with a projection head (a model has one head)", c.classes!) }
      guard size.hidden > 0, size.output > 0 else { throw ModelError.invalidSize("projection size", min(size.hidden, size.output)) }
    }
    fc = c.classes.map { Linear(registry, name: "fc", inputFeatures: inputChannels, outputFeatures: $0) }
    projection = c.projection.map { ProjectionHead(registry, inputFeatures: inputChannels, size: $0) }
    registry.allocate()
    let scratch = ConvolutionScratch()
    for conv in convolutions { conv.scratch = scratch }
    let (normalization, chain, shortcut) = (SharedWorkspace(), SharedWorkspace(), SharedWorkspace())
    bn1.gradientBuffer = normalization
    let masked = [SharedWorkspace(), SharedWorkspace()]
    for (index, block) in layers.joined().enumerated() {
      block.share(normalization: normalization, chain: chain, shortcut: shortcut, masked: masked[index % 2])
    }
    var rng = SplitMix64(seed: seed)
    for conv in convolutions { conv.initialize(&rng) }
    for bn in batchNorms { bn.initialize() }
    fc?.initialize(&rng)
    projection?.initialize(&rng)
    configureGradients()
  }

  public var blocks: [ResidualUnit] { layers.flatMap { $0 } }
  public var convolutions: [Conv2d] { [conv1] + blocks.flatMap(\.convolutions) }
  public var batchNorms: [BatchNorm2d] { [bn1] + blocks.flatMap(\.batchNorms) + (projection.map { [$0.norm] } ?? []) }

  /// Tells the layers that weights were replaced from outside the optimizer (a checkpoint, an
  /// import), so nothing derived from the old weights is reused.
  public func weightsChanged() {
    for conv in convolutions { conv.weightsChanged() }
  }

  /// Chooses GEMM or Winograd for the 3x3 stride-1 convolutions.
  public func setConvolutionAlgorithm(_ algorithm: ConvolutionAlgorithm) {
    for conv in convolutions { conv.algorithm = algorithm }
  }

  /// BatchNorm layers use batch statistics (true) or running statistics (false).
  public func setBatchNormTraining(_ training: Bool) {
    for bn in batchNorms { bn.training = training }
  }

  /// Recomputes which gradients backward computes, after `requiresGradient` flags change:
  /// nothing below the lowest trainable parameter is differentiated.
  public func configureGradients() {
    weightsChanged()
    var below = false  // the input image needs no gradient
    conv1.computesInputGradient = below
    below = below || conv1.weight.requiresGradient
    bn1.computesInputGradient = below
    below = below || bn1.weight.requiresGradient || bn1.bias.requiresGradient
    maxPool?.computesInputGradient = below
    stemComputesInputGradient = below
    for block in blocks {
      block.configureGradients(inputGradient: below)
      below = below || block.needsBackward
    }
    pool.computesInputGradient = below
    fc?.computesInputGradient = below
    projection?.configureGradients(inputGradient: below)
  }

  /// images: [N, H, W, Cin] -> logits [N, classes], or embeddings [N, output] with a projection
  /// head, or pooled features [N, featureDimension] without a head.
  public func forward(_ images: FeatureMap) -> UnsafeMutablePointer<Float> {
    let features = forwardFeatures(images)
    return forwardHead(features.data, batch: features.batch)
  }

  /// Pooled features [N, featureDimension] -> the head's output (the features themselves
  /// without a head). `features` must stay valid until `backward`.
  public func forwardHead(_ features: UnsafeMutablePointer<Float>, batch: Int) -> UnsafeMutablePointer<Float> {
    if let projection { return projection.forward(features, batch: batch) }
    guard let fc else { return features }
    return Profiler.time(.linear) { fc.forward(features, batch: batch) }
  }

  /// Width of `forward`'s output rows.
  public var outputDimension: Int { configuration.projection?.output ?? configuration.classes ?? featureDimension }

  /// images -> pooled features [N, featureDimension].
  public func forwardFeatures(_ images: FeatureMap) -> FeatureMap {
    let sums = bn1.inputSums()
    var h = Profiler.time(.convolution) { conv1.forward(images, observer: sums?.observer) }
    h = Profiler.time(.batchnorm) { bn1.forward(h, sums: sums) }
    if let maxPool { h = Profiler.time(.pooling) { maxPool.forward(h) } }
    for block in blocks { h = block.forward(h) }
    let features = Profiler.time(.pooling) { pool.forward(h) }
    return features
  }

  /// Backward from dL/dlogits (or dL/dfeatures without a head); accumulates into the
  /// registry's gradients. `observer` hears of each completed suffix of the gradient buffer.
  public func backward(_ dOutput: UnsafePointer<Float>, observer: GradientObserver? = nil) {
    registry.gradientsWritten()
    var g = dOutput
    if let projection {
      defer { observer?(projection.first.weight.offset) }
      guard let d = projection.backward(dOutput) else { return }
      g = UnsafePointer(d)
    }
    if let fc {
      defer { observer?(fc.weight.offset) }
      guard let d = Profiler.time(.linear, { fc.backward(dOutput) }) else { return }
      g = UnsafePointer(d)
    }
    guard let d = Profiler.time(.pooling, { pool.backward(g) }) else { return }
    g = UnsafePointer(d.data)
    let all = blocks
    // The sums of g taken while the layer above made it (none for the last unit's: the pool).
    var sums: OutputGradientSums?
    for (index, block) in all.enumerated().reversed() {
      guard block.needsBackward else { return }
      // The unit below sums its output gradient while this unit's GEMM makes it.
      let below = index > 0
        ? all[index - 1].needsBackward ? all[index - 1].outputGradientSums() : nil
        : stemComputesInputGradient && maxPool == nil ? bn1.gradientSums().map(OutputGradientSums.init) : nil
      guard let d = block.backward(g, sums: sums, observer: observer, inputObserver: below?.observer) else { return }
      g = UnsafePointer(d.data)
      sums = below
    }
    if stemComputesInputGradient, let maxPool {
      let below = bn1.gradientSums().map(OutputGradientSums.init)
      guard let d = Profiler.time(.pooling, { maxPool.backward(g, observer: below?.observer) }) else { return }
      g = UnsafePointer(d.data)
      sums = below
    }
    defer { observer?(0) }
    _ = backwardThrough(bn1, conv1, g, sums: sums?.first)
  }

  /// FLOPs of the last forward pass (convolutions and the head) and of a training step with
  /// the current gradient configuration (dW for trained weights, dX where it is propagated).
  public var lastFLOPs: (forward: Double, training: Double) {
    var forward = 0.0
    var training = 0.0
    for conv in convolutions {
      let f = conv.lastForwardFLOPs
      forward += f
      training += f * Double(1 + (conv.weight.requiresGradient ? 1 : 0) + (conv.computesInputGradient ? 1 : 0))
    }
    for linear in [fc, projection?.first, projection?.second].compactMap({ $0 }) {
      let f = linear.lastForwardFLOPs
      forward += f
      training += f * Double(1 + (linear.weight.requiresGradient ? 1 : 0) + (linear.computesInputGradient ? 1 : 0))
    }
    return (forward, training)
  }
}

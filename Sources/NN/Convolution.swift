// Conv2d (no bias) over NHWC activations: the layer, its parameters, and the one place where it
// chooses how to compute itself. The math is the plain convolution that `Reference.convolution`
// states (im2col and one GEMM); each faster method, with its forward and backward side by side,
// is in a file of its own: ConvolutionGEMM.swift (im2col + GEMM, and the 1x1 backward that takes
// dy in parts), ConvolutionStreamed.swift (the stem's lowering part by part),
// ConvolutionTaps.swift (one GEMM per kernel tap on tiny maps) and ConvolutionWinograd.swift.
import Support
import Tensors

/// Which methods a convolution may use.
public enum ConvolutionAlgorithm: String, CaseIterable, Sendable {
  /// im2col (none for 1x1 stride-1) and one sgemm per pass, everywhere (the stem may still lower
  /// its input part by part: the same products in another order).
  case gemm
  /// The fastest method for each layer (`Conv2d.method(for:)`).
  case winograd
}

/// How one forward (and the backward after it) computes the convolution.
public enum ConvolutionMethod: Sendable {
  /// One GEMM per kernel tap (`TapPlan`): outputs of at most `Conv2d.tapOutputPixels` pixels.
  case taps(TapPlan)
  /// Winograd's F(m x m, 3x3) for 3x3, stride-1, padding-1 layers.
  case winograd(WinogradTransform)
  /// im2col and GEMM with the input lowered `lines` output lines at a time, never whole (a layer
  /// that needs no input gradient and has few output channels: the stem).
  case streamed(lines: Int)
  /// im2col (none for a 1x1 stride-1 layer) and one GEMM per product.
  case gemm

  /// For profiles and tests.
  public var name: String {
    switch self {
    case .taps: return "taps"
    case .winograd(let w): return "winograd F(\(w.outputTile)x\(w.outputTile))"
    case .streamed: return "streamed gemm"
    case .gemm: return "gemm"
    }
  }
}

/// The buffers a convolution uses only within one forward or one backward call (gathered
/// rows, Winograd's M and dM and dU, lowered gradients, partial sums, transform scratch):
/// layers that run one after another share one set (`Conv2d.scratch`), so that a step reuses
/// the same memory, warm in cache, instead of each layer touching its own.
public final class ConvolutionScratch {
  var gatheredInput = Workspace()
  var gatheredGradient = Workspace()
  var tapProduct = Workspace()
  var transformedOutput = Workspace()  // M, then dM [t*t, P, Cout]
  var transformedWeightGradient = Workspace()  // dU[t*t, Cout, Cin]
  var transform = Workspace()
  var loweredGradient = Workspace()  // dcol, or per-worker partial weight gradients

  public init() {}
}

public final class Conv2d {
  public let inputChannels: Int
  public let outputChannels: Int
  public let kernelSize: Int
  public let stride: Int
  public let padding: Int
  /// [outputChannels, kernelSize, kernelSize, inputChannels] (OHWI).
  public let weight: Parameter
  /// False for the first layer, and for every layer below the lowest one that trains.
  public var computesInputGradient = true
  public var algorithm = ConvolutionAlgorithm.winograd
  /// This layer's per-call buffers; a model gives all its layers one (they never run at once).
  public var scratch = ConvolutionScratch()

  /// Outputs of at most this many pixels per image are computed one kernel tap at a time.
  public static let tapOutputPixels = 4

  /// What the last forward saw and chose; backward uses the same.
  var input: FeatureMap?
  var geometry: ConvGeometry?
  public private(set) var method: ConvolutionMethod?
  /// The last tap plan made, kept while the geometry stays: a step allocates none.
  var tapPlan: TapPlan?
  var transformedInput = Workspace()  // V[t*t, P, Cin], kept for dW
  var transformedWeights = Workspace()  // U[t*t, Cout, Cin]
  /// The transform `transformedWeights` holds, while the weight is frozen: frozen weights are
  /// transformed once, not every step.
  var cachedTransform: Int?
  var output = Workspace()
  var lowered = Workspace()  // col[N*OH*OW, K*K*C], kept from forward for dW
  /// Where dx goes when it is not added to a target (see `ResNet`'s sharing of these).
  public var gradientBuffer = SharedWorkspace()

  public init(
    _ registry: ParameterRegistry, name: String, inputChannels: Int, outputChannels: Int,
    kernelSize: Int, stride: Int = 1, padding: Int = 0, group: ParameterGroup = .backbone
  ) {
    self.inputChannels = inputChannels
    self.outputChannels = outputChannels
    self.kernelSize = kernelSize
    self.stride = stride
    self.padding = padding
    weight = registry.parameter(
      "\(name).weight", shape: [outputChannels, inputChannels, kernelSize, kernelSize],
      kind: .convolution, group: group, storage: .ohwi)
  }

  /// Forgets whatever was derived from the weights (call after replacing them).
  public func weightsChanged() { cachedTransform = nil }

  /// Kaiming-normal (fan-out, ReLU gain) like torchvision's ResNet.
  public func initialize(_ rng: inout SplitMix64) {
    let std = (2.0 / Float(outputChannels * kernelSize * kernelSize)).squareRoot()
    for i in 0..<weight.count { weight.value[i] = rng.normal() * std }
  }

  public func outputSize(height: Int, width: Int) -> (Int, Int) {
    ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
  }

  /// Multiply-adds x2 of the last forward pass.
  public var lastForwardFLOPs: Double {
    guard let g = geometry else { return 0 }
    return 2 * Double(g.rows) * Double(g.columns) * Double(outputChannels)
  }

  /// Whether the last forward lowered its input part by part, never whole.
  public var streamedLowering: Bool {
    if case .streamed = method { return true }
    return false
  }

  /// The method for an input of geometry `g`, in order of preference: taps on tiny outputs,
  /// Winograd for 3x3 stride-1 padding-1 layers (both only under `.winograd`), the streamed
  /// lowering where it applies, else GEMM.
  public func method(for g: ConvGeometry) -> ConvolutionMethod {
    if algorithm == .winograd && kernelSize > 1 && g.outputHeight * g.outputWidth <= Self.tapOutputPixels {
      if tapPlan?.geometry != g { tapPlan = TapPlan(g) }
      return .taps(tapPlan!)
    }
    if algorithm == .winograd && kernelSize == 3 && stride == 1 && padding == 1 {
      return .winograd(Self.winogradTransform(batch: g.batch, height: g.height, width: g.width))
    }
    if let lines = streamedLines(g) { return .streamed(lines: lines) }
    return .gemm
  }

  /// The shape and method of the last forward, for the per-convolution profile.
  func profileKey(_ x: FeatureMap) -> String {
    "\(kernelSize)x\(kernelSize)/\(stride) \(inputChannels)->\(outputChannels) on \(x.height)x\(x.width), \(method?.name ?? "none")"
  }

  // x: [N, H, W, Cin] -> y: [N, OH, OW, Cout]
  /// With `observer`, each part of the output is reported once final (see `ProductObserver`):
  /// as the GEMM or the Winograd output transform makes it, or after the whole output (taps).
  public func forward(_ x: FeatureMap, observer: ProductObserver? = nil) -> FeatureMap {
    precondition(x.channels == inputChannels, "conv expects \(inputChannels) channels, got \(x.channels)")
    let g = ConvGeometry(
      batch: x.batch, height: x.height, width: x.width, channels: inputChannels,
      kernel: kernelSize, stride: stride, padding: padding)
    input = x
    geometry = g
    let chosen = method(for: g)
    method = chosen
    let y = output.pointer(count: g.rows * outputChannels)
    Profiler.time(profileKey(x), part: 0) {
      switch chosen {
      case .taps(let plan):
        tapsForward(x, plan, into: y)
        if let observer { BLAS.report(y, rows: g.rows, channels: outputChannels, to: observer) }
      case .winograd(let transform): winogradForward(x, transform, into: y, observer)
      case .streamed(let lines): streamedForward(x, g, lines: lines, into: y, observer)
      case .gemm: gemmForward(x, g, into: y, observer)
      }
    }
    if Profiler.enabled { Profiler.convolutions[profileKey(x), default: [0, 0, 0, 0]][3] += 1 }
    return FeatureMap(data: y, batch: x.batch, height: g.outputHeight, width: g.outputWidth, channels: outputChannels)
  }

  /// Makes `rows` of the output gradient at the pointer given (row `rows.lowerBound` first):
  /// the BatchNorm above a convolution, whose dx is this layer's dy.
  public typealias GradientProducer = (_ rows: Range<Int>, _ into: UnsafeMutablePointer<Float>) -> Void

  /// The output gradient backward receives: whole, or made part by part by its producer (only
  /// when `consumesGradientInParts`).
  public enum OutputGradient {
    case whole(UnsafePointer<Float>)
    case parts(GradientProducer)
  }

  /// Whether backward takes dy in parts (`OutputGradient.parts`), so that it is never written
  /// whole; else the caller makes dy whole first. True for 1x1 stride-1 layers whose weight
  /// gradient is a long reduction (at least 8 rows per output or input channel: the large
  /// maps), and for layers that lower their input part by part (the stem).
  public var consumesGradientInParts: Bool {
    guard let g = geometry, let method else { return false }
    switch method {
    case .streamed: return true
    case .gemm: return g.isPointwise && g.rows >= 8 * max(inputChannels, outputChannels)
    case .taps, .winograd: return false
    }
  }

  /// dy: [N, OH, OW, Cout]. Accumulates dW (when the weight trains); returns dx when
  /// `computesInputGradient`, else nil. With `target`, dx is added to it in place (a residual
  /// join's two branches meeting) and `target` is returned as dx: no buffer is zeroed for it and
  /// no separate sum pass is made. With `observer`, each part of dx is reported once final.
  public func backward(
    _ dy: OutputGradient, addingTo target: UnsafeMutablePointer<Float>? = nil, observer: ProductObserver? = nil
  ) -> FeatureMap? {
    guard let x = input, let g = geometry, let method else { preconditionFailure("backward before forward") }
    if case .parts = dy, !consumesGradientInParts { preconditionFailure("backward in parts on a layer that does not take them") }
    switch (method, dy) {
    case (.winograd(let transform), .whole(let dy)):
      // The input-gradient transform reports as it goes.
      return winogradBackward(dy, x, transform, addingTo: target, observer)
    case (.taps(let plan), .whole(let dy)):
      return reportedAfter(tapsBackward(dy, x, plan, addingTo: target), observer)
    case (.streamed(let lines), _):
      if weight.requiresGradient {
        Profiler.time(profileKey(x), part: 1) { streamedWeightGradient(dy, x, g, lines: lines) }
      }
      // The flags changed since forward (a layer streams only when it needs no dx): dx as GEMM's.
      guard computesInputGradient, case .whole(let dy) = dy else { return nil }
      return reportedAfter(Profiler.time(profileKey(x), part: 2) { gemmInputGradient(dy, x, g, addingTo: target, observer: nil) }, observer)
    case (.gemm, .parts(let produce)):
      return Profiler.time(profileKey(x), part: 2) { pointwiseBackward(producedBy: produce, x, addingTo: target, observer: observer) }
    case (.gemm, .whole(let dy)):
      if weight.requiresGradient { Profiler.time(profileKey(x), part: 1) { gemmWeightGradient(dy, g, x) } }
      guard computesInputGradient else { return nil }
      // A 1x1 layer's GEMM writes dx directly and reports as it goes; the others scatter after.
      let dx = Profiler.time(profileKey(x), part: 2) { gemmInputGradient(dy, x, g, addingTo: target, observer: g.isPointwise ? observer : nil) }
      return g.isPointwise ? dx : reportedAfter(dx, observer)
    case (.winograd, .parts), (.taps, .parts):
      preconditionFailure("unreachable: these methods never take dy in parts")
    }
  }

  /// `dx`, reported whole to `observer` (methods that cannot report part by part).
  private func reportedAfter(_ dx: FeatureMap?, _ observer: ProductObserver?) -> FeatureMap? {
    if let dx, let observer { BLAS.report(dx.data, rows: dx.pixels, channels: inputChannels, to: observer) }
    return dx
  }

  /// Runs `body` with where each of `workers` workers adds its share of dW: worker 0 straight
  /// into the weight's gradient, the others into zeroed partial sums, added to it afterwards
  /// in worker order (the same floats whatever the timing).
  func summingWeightGradient(
    workers: Int, _ body: (_ sum: (_ worker: Int) -> UnsafeMutablePointer<Float>) -> Void
  ) {
    let count = weight.count
    let gradient = weight.gradient!
    let partials = scratch.loweredGradient.pointer(count: max(1, workers - 1) * count)
    partials.update(repeating: 0, count: (workers - 1) * count)
    body { worker in worker == 0 ? gradient : partials + (worker - 1) * count }
    for worker in 1..<max(1, workers) { Elementwise.add(partials + (worker - 1) * count, into: gradient, count: count) }
  }
}

// Conv2d (no bias) as a forward/backward pair, lowered to sgemm over NHWC activations.
import Tensors

/// How a convolution is computed.
public enum ConvolutionAlgorithm: String, CaseIterable, Sendable {
  /// im2col (none for 1x1 stride-1) and one sgemm per pass, everywhere.
  case gemm
  /// The fastest method for each layer: one GEMM per kernel tap when the output has at most
  /// `Conv2d.tapOutputPixels` pixels (see `TapPlan`); else Winograd for 3x3, stride-1,
  /// padding-1 convolutions (F(4x4, 3x3), or F(2x2, 3x3) on small maps in small batches: see
  /// `Conv2d.winogradTransform`); else GEMM.
  case winograd
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

  private var input: FeatureMap?
  /// The Winograd transform used by the last forward, nil for GEMM.
  private var winograd: WinogradTransform?
  /// The tap plan used by the last forward, nil for the other methods.
  private var taps: TapPlan?
  /// The last tap plan made, kept while the geometry stays: a step allocates none.
  private var tapPlan: TapPlan?
  private var transformedInput = Workspace()  // V[t*t, P, Cin], kept for dW
  private var transformedWeights = Workspace()  // U[t*t, Cout, Cin]
  /// The transform `transformedWeights` holds, while the weight is frozen: frozen weights are
  /// transformed once, not every step.
  private var cachedTransform: Int?
  private var geometry: ConvGeometry?
  /// Output lines per part when the last forward streamed its lowering (`streamedLines`).
  private var streamed: Int?
  /// Whether the last forward lowered its input part by part, never whole (see `streamedLines`).
  public var streamedLowering: Bool { streamed != nil }
  private var output = Workspace()
  private var lowered = Workspace()  // col[N*OH*OW, K*K*C], kept from forward for dW
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

  /// The shape and algorithm of the last forward, for the per-convolution profile.
  private func profileKey(_ x: FeatureMap) -> String {
    let method = taps != nil ? "taps" : winograd.map { "winograd F(\($0.outputTile)x\($0.outputTile))" } ?? "gemm"
    return "\(kernelSize)x\(kernelSize)/\(stride) \(inputChannels)->\(outputChannels) on \(x.height)x\(x.width), \(method)"
  }

  /// F(4x4, 3x3), except on maps of at most 4 pixels a side with fewer than
  /// `f4MinimumTiles` F(4x4) tiles in the batch: there F(4x4)'s weight transforms (36 floats a
  /// weight against F(2x2)'s 16) cost more than its fewer multiplications save.
  public static func winogradTransform(batch: Int, height: Int, width: Int) -> WinogradTransform {
    let f4 = WinogradTransform.f4
    let (th, tw) = f4.tiles(height: height, width: width)
    return min(height, width) <= 4 && batch * th * tw < f4MinimumTiles ? .f2 : f4
  }

  /// Measured on ResNet-50's 256->256 layers on 4x4 maps: F(4x4) is faster from a batch of 64.
  public static let f4MinimumTiles = 64

  // x: [N, H, W, Cin] -> y: [N, OH, OW, Cout]
  /// With `observer`, each part of the output is reported once final (see `ProductObserver`):
  /// as the GEMM makes it, or after the whole output for the other methods.
  public func forward(_ x: FeatureMap, observer: ProductObserver? = nil) -> FeatureMap {
    let y = Profiler.time(profileKey(x), part: 0) { forwardBody(x, observer) }
    if Profiler.enabled { Profiler.convolutions[profileKey(x), default: [0, 0, 0, 0]][3] += 1 }
    return y
  }

  private func forwardBody(_ x: FeatureMap, _ observer: ProductObserver?) -> FeatureMap {
    let y = computeOutput(x, observer)
    // The GEMM and the Winograd output transform report as they go; the taps, after.
    if let observer, taps != nil { BLAS.report(y.data, rows: y.pixels, channels: outputChannels, to: observer) }
    return y
  }

  private func computeOutput(_ x: FeatureMap, _ observer: ProductObserver?) -> FeatureMap {
    precondition(x.channels == inputChannels, "conv expects \(inputChannels) channels, got \(x.channels)")
    let g = ConvGeometry(
      batch: x.batch, height: x.height, width: x.width, channels: inputChannels,
      kernel: kernelSize, stride: stride, padding: padding)
    input = x
    geometry = g
    let y = output.pointer(count: g.rows * outputChannels)
    winograd = nil
    taps = nil
    streamed = nil
    if algorithm == .winograd && kernelSize > 1 && g.outputHeight * g.outputWidth <= Self.tapOutputPixels {
      if tapPlan?.geometry != g { tapPlan = TapPlan(g) }
      let plan = tapPlan!
      taps = plan
      tapsForward(x, plan, into: y)
      return FeatureMap(
        data: y, batch: x.batch, height: g.outputHeight, width: g.outputWidth, channels: outputChannels)
    }
    if algorithm == .winograd && kernelSize == 3 && stride == 1 && padding == 1 {
      let transform = Self.winogradTransform(batch: x.batch, height: x.height, width: x.width)
      winograd = transform
      winogradForward(x, transform, into: y, observer)
      return FeatureMap(data: y, batch: x.batch, height: x.height, width: x.width, channels: outputChannels)
    }
    streamed = streamedLines(g)
    if let lines = streamed {
      streamedForward(x, g, lines: lines, into: y, observer)
      return FeatureMap(
        data: y, batch: x.batch, height: g.outputHeight, width: g.outputWidth, channels: outputChannels)
    }
    let col: UnsafePointer<Float>
    if g.isPointwise {
      col = UnsafePointer(x.data)
    } else {
      let buffer = lowered.pointer(count: g.rows * g.columns)
      Im2Col.lower(x.data, g, into: buffer)
      col = UnsafePointer(buffer)
    }
    BLAS.sgemm(
      transposeB: true, m: g.rows, n: outputChannels, k: g.columns,
      a: col, lda: g.columns, b: weight.value, ldb: g.columns, c: y, ldc: outputChannels, observer: observer)
    return FeatureMap(
      data: y, batch: x.batch, height: g.outputHeight, width: g.outputWidth, channels: outputChannels)
  }

  /// dy: [N, OH, OW, Cout]. Accumulates dW (when the weight trains); returns dx when
  /// `computesInputGradient`, else nil. With `target`, dx is added to it in place (a residual
  /// join's two branches meeting) and `target` is returned as dx: no buffer is zeroed for it and
  /// no separate sum pass is made.
  /// With `observer`, each part of dx is reported once final (see `forward(_:observer:)`).
  public func backward(
    _ dy: UnsafePointer<Float>, addingTo target: UnsafeMutablePointer<Float>? = nil, observer: ProductObserver? = nil
  ) -> FeatureMap? {
    guard let observer else { return backwardBody(dy, addingTo: target, nil) }
    let dx = backwardBody(dy, addingTo: target, observer)
    // The GEMM (1x1) and the Winograd input-gradient transform report as they go; the rest, after.
    let reported = winograd != nil || (geometry!.isPointwise && taps == nil && streamed == nil)
    if let dx, !reported { BLAS.report(dx.data, rows: dx.pixels, channels: inputChannels, to: observer) }
    return dx
  }

  /// Makes `rows` of the output gradient at the pointer given (row `rows.lowerBound` first):
  /// the BatchNorm above a convolution, whose dx is this layer's dy.
  public typealias GradientProducer = (_ rows: Range<Int>, _ into: UnsafeMutablePointer<Float>) -> Void

  /// Whether `backward(producedBy:)` takes dy a part at a time (see there); else the caller
  /// makes dy whole first. True for 1x1 stride-1 layers whose weight gradient is a long
  /// reduction (at least 8 rows per output or input channel: the large maps), and for layers
  /// that lower their input part by part (the stem: see `streamedLines`).
  public var consumesGradientInParts: Bool {
    guard let g = geometry, taps == nil, winograd == nil else { return false }
    if streamed != nil { return true }
    return g.isPointwise && g.rows >= 8 * max(inputChannels, outputChannels)
  }

  /// Backward with dy made part by part by `produce` (only when `consumesGradientInParts`):
  /// each worker makes about 1 MB of dy rows at a time into a buffer of its own, and the
  /// products read it from cache: its rows of dx (added to `target` when given, and reported
  /// to `observer`), and its share of dW (summed per worker, then added). dy is never written
  /// whole nor read back from memory.
  public func backward(
    producedBy produce: GradientProducer, addingTo target: UnsafeMutablePointer<Float>? = nil,
    observer: ProductObserver? = nil
  ) -> FeatureMap? {
    guard let x = input, let g = geometry, consumesGradientInParts else {
      preconditionFailure("backward in parts on a layer that does not take them")
    }
    if let lines = streamed {
      if weight.requiresGradient {
        Profiler.time(profileKey(x), part: 1) {
          withoutActuallyEscaping(produce) { streamedWeightGradient(.parts($0), x, g, lines: lines) }
        }
      }
      return nil
    }
    let (cin, cout, rows) = (inputChannels, outputChannels, x.pixels)
    let trains = weight.requiresGradient
    let dx: UnsafeMutablePointer<Float>? = computesInputGradient ? target ?? gradientBuffer.pointer(count: x.count) : nil
    let partRows = max(64, (1 << 18) / max(cin, cout))
    let workers = Parallel.chunkCount(rows, grain: partRows)
    let parts = scratch.gatheredGradient.pointer(count: workers * partRows * cout)
    Profiler.time(profileKey(x), part: 2) {
      summingWeightGradient(workers: trains ? workers : 1) { sum in
        Parallel.forEachChunk(rows, grain: partRows) { worker, range in
          let dy = parts + worker * partRows * cout
          var start = range.lowerBound
          while start < range.upperBound {
            let part = start..<min(start + partRows, range.upperBound)
            produce(part, dy)
            if trains {
              BLAS.sgemm(
                transposeA: true, m: cout, n: cin, k: part.count, a: dy, lda: cout, b: x.data + part.lowerBound * cin,
                ldb: cin, beta: 1, c: sum(worker), ldc: cin, parallel: false)
            }
            if let dx {
              BLAS.sgemm(
                m: part.count, n: cin, k: cout, a: dy, lda: cout, b: weight.value, ldb: cin,
                beta: target != nil ? 1 : 0, c: dx + part.lowerBound * cin, ldc: cin, parallel: false)
              observer?(worker, dx, cin, part, 0..<cin)
            }
            start = part.upperBound
          }
        }
      }
    }
    return dx.map { x.with(data: $0) }
  }

  /// Runs `body` with where each of `workers` workers adds its share of dW: worker 0 straight
  /// into the weight's gradient, the others into zeroed partial sums, added to it afterwards
  /// in worker order (the same floats whatever the timing).
  private func summingWeightGradient(
    workers: Int, _ body: (_ sum: (_ worker: Int) -> UnsafeMutablePointer<Float>) -> Void
  ) {
    let count = weight.count
    let gradient = weight.gradient!
    let partials = scratch.loweredGradient.pointer(count: max(1, workers - 1) * count)
    partials.update(repeating: 0, count: (workers - 1) * count)
    body { worker in worker == 0 ? gradient : partials + (worker - 1) * count }
    for worker in 1..<max(1, workers) { Elementwise.add(partials + (worker - 1) * count, into: gradient, count: count) }
  }

  /// Where a weight gradient's dy rows come from: a whole matrix, or a producer of parts.
  private enum GradientRows {
    case whole(UnsafePointer<Float>)
    case parts(GradientProducer)
  }

  private func backwardBody(
    _ dy: UnsafePointer<Float>, addingTo target: UnsafeMutablePointer<Float>?, _ observer: ProductObserver?
  ) -> FeatureMap? {
    guard let x = input, let g = geometry else { preconditionFailure("backward before forward") }
    if let transform = winograd { return winogradBackward(dy, x, transform, addingTo: target, observer) }
    if let plan = taps { return tapsBackward(dy, x, plan, addingTo: target) }
    if let lines = streamed {
      if weight.requiresGradient {
        Profiler.time(profileKey(x), part: 1) { streamedWeightGradient(.whole(dy), x, g, lines: lines) }
      }
      guard computesInputGradient else { return nil }
      // The flags changed since forward: lower the whole input after all.
      Im2Col.lower(x.data, g, into: lowered.pointer(count: g.rows * g.columns))
    }
    let col: UnsafePointer<Float> = g.isPointwise ? UnsafePointer(x.data) : UnsafePointer(lowered.tensor!.data)
    if weight.requiresGradient && streamed == nil {
      Profiler.time(profileKey(x), part: 1) {
        BLAS.sgemm(
          transposeA: true, m: outputChannels, n: g.columns, k: g.rows,
          a: dy, lda: outputChannels, b: col, ldb: g.columns, beta: 1, c: weight.gradient, ldc: g.columns)
      }
    }
    guard computesInputGradient else { return nil }
    return Profiler.time(profileKey(x), part: 2) {
      let dx = target ?? gradientBuffer.pointer(count: x.count)
      let direct = g.isPointwise
      let dcol = direct ? dx : scratch.loweredGradient.pointer(count: g.rows * g.columns)
      BLAS.sgemm(
        m: g.rows, n: g.columns, k: outputChannels, a: dy, lda: outputChannels, b: weight.value, ldb: g.columns,
        beta: direct && target != nil ? 1 : 0, c: dcol, ldc: g.columns, observer: direct ? observer : nil)
      if !direct { Im2Col.scatter(dcol, g, into: dx, accumulate: target != nil) }
      return x.with(data: dx)
    }
  }

  /// Output lines lowered at a time when the lowered matrix is never made whole, or nil. A
  /// layer with no input gradient and few output channels (the stem: 7x7x3 -> 64) lowers
  /// about 1 MB of rows at a time, just before the GEMM packs them, once in forward and again
  /// for the weight gradient, instead of writing the whole lowered matrix (49 times the image)
  /// and reading it back twice.
  private func streamedLines(_ g: ConvGeometry) -> Int? {
    guard !g.isPointwise, !computesInputGradient else { return nil }
    let lines = max(1, (1 << 18) / (g.outputWidth * g.columns))
    guard outputChannels * 8 <= lines * g.outputWidth, g.batch * g.outputHeight >= 2 * lines else { return nil }
    return lines
  }

  /// Lowers the input part by part, `lines` output lines at a time, each worker into its own
  /// buffer, and calls `body(worker, col, rows)` with each part's lowered rows.
  private func forEachLoweredPart(
    _ x: FeatureMap, _ g: ConvGeometry, lines: Int,
    _ body: (_ worker: Int, _ col: UnsafePointer<Float>, _ rows: Range<Int>) -> Void
  ) {
    let partSize = lines * g.outputWidth * g.columns
    let buffers = lowered.pointer(count: Parallel.workers * partSize)
    Parallel.forEachChunk(g.batch * g.outputHeight, grain: lines) { worker, range in
      let col = buffers + worker * partSize
      var start = range.lowerBound
      while start < range.upperBound {
        let part = start..<min(start + lines, range.upperBound)
        Im2Col.lower(x.data, g, lines: part, into: col)
        body(worker, col, (part.lowerBound * g.outputWidth)..<(part.upperBound * g.outputWidth))
        start = part.upperBound
      }
    }
  }

  private func streamedForward(
    _ x: FeatureMap, _ g: ConvGeometry, lines: Int, into y: UnsafeMutablePointer<Float>, _ observer: ProductObserver?
  ) {
    let (k, cout) = (g.columns, outputChannels)
    forEachLoweredPart(x, g, lines: lines) { worker, col, rows in
      BLAS.sgemm(
        transposeB: true, m: rows.count, n: cout, k: k, a: col, lda: k, b: weight.value, ldb: k,
        c: y + rows.lowerBound * cout, ldc: cout, parallel: false)
      observer?(worker, y, cout, rows, 0..<cout)
    }
  }

  /// dW += dy^T * col, the rows of col lowered again part by part; each worker sums its own
  /// parts, and the workers' sums are added at the end. dy's rows are made for each part
  /// beside them when they come from a producer.
  private func streamedWeightGradient(_ dy: GradientRows, _ x: FeatureMap, _ g: ConvGeometry, lines: Int) {
    let (k, cout) = (g.columns, outputChannels)
    let chunks = Parallel.chunkCount(g.batch * g.outputHeight, grain: lines)
    let partRows = lines * g.outputWidth
    let made: UnsafeMutablePointer<Float>? = if case .parts = dy { scratch.gatheredGradient.pointer(count: chunks * partRows * cout) } else { nil }
    summingWeightGradient(workers: chunks) { sum in
      forEachLoweredPart(x, g, lines: lines) { worker, col, rows in
        let rowsOfDy: UnsafePointer<Float>
        switch dy {
        case .whole(let matrix):
          rowsOfDy = matrix + rows.lowerBound * cout
        case .parts(let produce):
          let buffer = made! + worker * partRows * cout
          produce(rows, buffer)
          rowsOfDy = UnsafePointer(buffer)
        }
        BLAS.sgemm(
          transposeA: true, m: cout, n: k, k: rows.count, a: rowsOfDy, lda: cout,
          b: col, ldb: k, beta: 1, c: sum(worker), ldc: k, parallel: false)
      }
    }
  }

  /// y = sum over taps of (the tap's input rows) * W_tap^T, added at the tap's output pixels.
  private func tapsForward(_ x: FeatureMap, _ plan: TapPlan, into y: UnsafeMutablePointer<Float>) {
    let g = plan.geometry
    let (cin, cout) = (inputChannels, outputChannels)
    let (inPixels, outPixels) = (g.height * g.width, g.outputHeight * g.outputWidth)
    let ldw = kernelSize * kernelSize * cin
    let rows = plan.maximumRows
    let gathered = scratch.gatheredInput.pointer(count: rows * cin)
    let product = scratch.tapProduct.pointer(count: rows * cout)
    var written = false
    for tap in plan.taps {
      let m = x.batch * tap.outputs.count
      var a = UnsafePointer(x.data)
      if !tap.isIdentity {
        TapPlan.gather(x.data, pixels: tap.inputs, imagePixels: inPixels, channels: cin, batch: x.batch, into: gathered)
        a = UnsafePointer(gathered)
      }
      if !tap.coversOutput && !written {
        Elementwise.zero(y, count: x.batch * outPixels * cout)
        written = true
      }
      BLAS.sgemm(
        transposeB: true, m: m, n: cout, k: cin, a: a, lda: cin, b: weight.value + tap.index * cin, ldb: ldw,
        beta: written && tap.coversOutput ? 1 : 0, c: tap.coversOutput ? y : product, ldc: cout)
      if !tap.coversOutput {
        TapPlan.scatterAdd(product, pixels: tap.outputs, imagePixels: outPixels, channels: cout, batch: x.batch, into: y)
      }
      written = true
    }
    if !written { Elementwise.zero(y, count: x.batch * outPixels * cout) }
  }

  /// Per tap: dW_tap += (output-gradient rows)^T * (input rows), straight into the tap's slice
  /// of the OHWI gradient; dx += (output-gradient rows) * W_tap at the tap's input pixels.
  private func tapsBackward(
    _ dy: UnsafePointer<Float>, _ x: FeatureMap, _ plan: TapPlan, addingTo target: UnsafeMutablePointer<Float>?
  ) -> FeatureMap? {
    let g = plan.geometry
    let (cin, cout) = (inputChannels, outputChannels)
    let (inPixels, outPixels) = (g.height * g.width, g.outputHeight * g.outputWidth)
    let ldw = kernelSize * kernelSize * cin
    let rows = plan.maximumRows
    let gx = scratch.gatheredInput.pointer(count: rows * cin)
    let gdy = scratch.gatheredGradient.pointer(count: rows * cout)
    let product = scratch.tapProduct.pointer(count: rows * max(cin, cout))
    let dx: UnsafeMutablePointer<Float>? = computesInputGradient ? target ?? gradientBuffer.pointer(count: x.count) : nil
    // Everything is added to a target; without one, the first product writes dx.
    var dxWritten = target != nil
    for tap in plan.taps {
      let m = x.batch * tap.outputs.count
      var gradientRows = dy
      if !tap.coversOutput {
        TapPlan.gather(dy, pixels: tap.outputs, imagePixels: outPixels, channels: cout, batch: x.batch, into: gdy)
        gradientRows = UnsafePointer(gdy)
      }
      if weight.requiresGradient {
        Profiler.time(profileKey(x), part: 1) {
          var inputRows = UnsafePointer(x.data)
          if !tap.isIdentity {
            TapPlan.gather(x.data, pixels: tap.inputs, imagePixels: inPixels, channels: cin, batch: x.batch, into: gx)
            inputRows = UnsafePointer(gx)
          }
          BLAS.sgemm(
            transposeA: true, m: cout, n: cin, k: m, a: gradientRows, lda: cout, b: inputRows, ldb: cin,
            beta: 1, c: weight.gradient + tap.index * cin, ldc: ldw)
        }
      }
      guard let dx else { continue }
      Profiler.time(profileKey(x), part: 2) {
        // The identity tap's rows are dx's own; the others are added at their input pixels.
        let direct = tap.isIdentity
        if !direct && !dxWritten { Elementwise.zero(dx, count: x.count) }
        BLAS.sgemm(
          m: m, n: cin, k: cout, a: gradientRows, lda: cout, b: weight.value + tap.index * cin, ldb: ldw,
          beta: direct && dxWritten ? 1 : 0, c: direct ? dx : product, ldc: cin)
        if !direct {
          TapPlan.scatterAdd(product, pixels: tap.inputs, imagePixels: inPixels, channels: cin, batch: x.batch, into: dx)
        }
        dxWritten = true
      }
    }
    guard let dx else { return nil }
    if !dxWritten { Elementwise.zero(dx, count: x.count) }
    return x.with(data: dx)
  }

  private func winogradForward(
    _ x: FeatureMap, _ w: WinogradTransform, into y: UnsafeMutablePointer<Float>, _ observer: ProductObserver?
  ) {
    let (th, tw) = w.tiles(height: x.height, width: x.width)
    let p = x.batch * th * tw
    let xi = w.inputTile * w.inputTile
    let (cin, cout) = (inputChannels, outputChannels)
    let s = scratch.transform.pointer(count: w.scratchCount(channels: max(cin, cout)))
    let previous = transformedWeights.tensor?.data
    let u = transformedWeights.pointer(count: xi * cout * cin)
    if u != previous { cachedTransform = nil }
    let v = transformedInput.pointer(count: xi * p * cin)
    let m = scratch.transformedOutput.pointer(count: xi * p * cout)
    if weight.requiresGradient || cachedTransform != w.outputTile {
      w.transformWeights(weight.value, outputChannels: cout, inputChannels: cin, into: u, scratch: s)
      cachedTransform = weight.requiresGradient ? nil : w.outputTile
    }
    w.transformInput(x.data, batch: x.batch, height: x.height, width: x.width, channels: cin, into: v, scratch: s)
    w.batchedProducts { k in
      BLAS.sgemm(
        transposeB: true, m: p, n: cout, k: cin, a: v + k * p * cin, lda: cin,
        b: u + k * cout * cin, ldb: cin, c: m + k * p * cout, ldc: cout, parallel: false)
    }
    w.transformOutput(m, batch: x.batch, height: x.height, width: x.width, channels: cout, into: y, scratch: s, observer: observer)
  }

  private func winogradBackward(
    _ dy: UnsafePointer<Float>, _ x: FeatureMap, _ w: WinogradTransform, addingTo target: UnsafeMutablePointer<Float>?,
    _ observer: ProductObserver?
  ) -> FeatureMap? {
    let (th, tw) = w.tiles(height: x.height, width: x.width)
    let p = x.batch * th * tw
    let xi = w.inputTile * w.inputTile
    let (cin, cout) = (inputChannels, outputChannels)
    let s = scratch.transform.pointer(count: w.scratchCount(channels: max(cin, cout)))
    let u = transformedWeights.tensor!.data
    let v = transformedInput.tensor!.data
    let dm = scratch.transformedOutput.pointer(count: xi * p * cout)
    Profiler.time(profileKey(x), part: 1) {
      w.transformOutputGradient(dy, batch: x.batch, height: x.height, width: x.width, channels: cout, into: dm, scratch: s)
      if weight.requiresGradient {
        let du = scratch.transformedWeightGradient.pointer(count: xi * cout * cin)
        w.batchedProducts { k in
          BLAS.sgemm(
            transposeA: true, m: cout, n: cin, k: p, a: dm + k * p * cout, lda: cout,
            b: v + k * p * cin, ldb: cin, c: du + k * cout * cin, ldc: cin, parallel: false)
        }
        w.accumulateWeightGradient(du, outputChannels: cout, inputChannels: cin, into: weight.gradient, scratch: s)
      }
    }
    guard computesInputGradient else { return nil }
    return Profiler.time(profileKey(x), part: 2) {
      // V is no longer needed: dV overwrites it.
      w.batchedProducts { k in
        BLAS.sgemm(
          m: p, n: cin, k: cout, a: dm + k * p * cout, lda: cout,
          b: u + k * cout * cin, ldb: cin, c: v + k * p * cin, ldc: cin, parallel: false)
      }
      let dx = target ?? gradientBuffer.pointer(count: x.count)
      w.transformInputGradient(
        v, batch: x.batch, height: x.height, width: x.width, channels: cin, into: dx, scratch: s,
        accumulate: target != nil, observer: observer)
      return x.with(data: dx)
    }
  }
}

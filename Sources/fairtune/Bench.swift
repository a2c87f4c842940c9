// `fairtune bench`: training-step throughput, achieved GFLOP/s against the sgemm ceiling, and
// where the time goes.
import ArgumentParser
import Foundation
import NN
import Tensors

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the training step (forward, 40-way BCE, backward, SGD) on random data.",
    discussion: """
      Prints images per second (from the median step), the achieved GFLOP/s (convolution and
      linear FLOPs of forward, dW and dX), the sgemm GFLOP/s of a 1024^3 product measured in the
      same run (the ceiling), and the share of step time per layer type. With --json the last
      line is one JSON object with images_per_second, gflops, sgemm_gflops and more.
      """)

  @OptionGroup var modelOptions: ModelOptions

  @Option(help: "Images per step.")
  var batch: Int = 64

  @Option(help: "Timed steps (after the warm-up steps).")
  var steps: Int = 10

  @Option(help: "Untimed warm-up steps (the first one sizes every buffer).")
  var warmup: Int = 2

  @Option(help: "Threads for OpenBLAS and the elementwise kernels.")
  var threads: Int = 2

  @Option(help: "Outputs of the head (40 for the CelebA attributes).")
  var classes: Int = 40

  @Option(help: "Convolution algorithm: winograd (for 3x3 stride-1, GEMM elsewhere) or gemm (im2col + sgemm everywhere).")
  var conv: String = "winograd"

  @Flag(help: "End with one line of JSON.")
  var json = false

  func validate() throws {
    guard batch > 0 else { throw ValidationError("--batch must be positive (got \(batch)).") }
    guard steps > 0 else { throw ValidationError("--steps must be positive (got \(steps)).") }
    guard warmup >= 0 else { throw ValidationError("--warmup cannot be negative (got \(warmup)).") }
    guard threads > 0 else { throw ValidationError("--threads must be positive (got \(threads)).") }
    guard classes > 0 else { throw ValidationError("--classes must be positive (got \(classes)).") }
    guard ConvolutionAlgorithm(rawValue: conv) != nil else {
      throw ValidationError("--conv '\(conv)' is not an algorithm: use winograd or gemm.")
    }
  }

  func run() throws {
    BLAS.setThreads(threads)
    let size = modelOptions.imageSize
    let model = try ResNet(modelOptions.configuration(classes: classes), seed: 1)
    model.setConvolutionAlgorithm(ConvolutionAlgorithm(rawValue: conv)!)
    let images = Tensor(shape: [batch, size, size, 3])
    let targets = Tensor(shape: [batch, classes])
    var rng = SplitMix64(seed: 2)
    for i in 0..<images.count { images.data[i] = rng.normal() }
    for i in 0..<targets.count { targets.data[i] = rng.uniform() < 0.3 ? 1 : 0 }
    let logitGradient = Tensor(shape: [batch, classes])
    let optimizer = SGD(learningRate: 0.01, momentum: 0.9)
    let input = FeatureMap(data: images.data, batch: batch, height: size, width: size, channels: 3)

    var loss: Float = 0
    func step() {
      model.registry.zeroGradients()
      let logits = model.forward(input)
      loss = Profiler.time(.loss) {
        Losses.binaryCrossEntropyWithLogits(
          logits: logits, targets: targets.data, count: batch * classes, gradient: logitGradient.data)
      }
      model.backward(logitGradient.data)
      Profiler.time(.optimizer) { optimizer.step(model.registry) }
    }

    let sgemm = BLAS.measureGFLOPs()
    for _ in 0..<warmup { step() }
    Profiler.reset()
    Profiler.enabled = true
    var times: [Double] = []
    for _ in 0..<steps {
      let start = Clock.now()
      step()
      times.append(Clock.now() - start)
    }
    Profiler.enabled = false
    let stepTime = median(times)
    let flops = model.lastFLOPs
    let imagesPerSecond = Double(batch) / stepTime
    let gflops = flops.training / stepTime / 1e9
    let total = times.reduce(0, +)
    let c = modelOptions
    print("\(c.model) width \(c.width) stem \(c.stem), \(size)x\(size), batch \(batch), \(threads) threads, \(conv) convolutions, \(model.registry.parameterCount) parameters")
    print(String(format: "step %.1f ms (median of %d), %.1f img/s, loss %.4f", stepTime * 1000, steps, imagesPerSecond, loss))
    print(String(format: "%.3f GFLOP per image (training), %.1f GFLOP/s achieved, sgemm ceiling %.1f GFLOP/s (%.0f%%)",
      flops.training / Double(batch) / 1e9, gflops, sgemm, 100 * gflops / sgemm))
    let profiled = Profiler.seconds.values.reduce(0, +)
    for type in LayerType.allCases {
      let s = Profiler.seconds[type, default: 0]
      print(String(format: "  %-12@ %6.1f%%", type.rawValue as NSString, 100 * s / total))
    }
    print(String(format: "  %-12@ %6.1f%%", "other" as NSString, 100 * (total - profiled) / total))
    if json {
      var object: [String: Any] = [
        "model": c.model, "width": c.width, "stem": c.stem, "image_size": size, "batch": batch,
        "threads": threads, "steps": steps, "conv": conv, "step_seconds": stepTime, "images_per_second": imagesPerSecond,
        "gflops": gflops, "sgemm_gflops": sgemm, "gflop_per_image": flops.training / Double(batch) / 1e9,
        "parameters": model.registry.parameterCount, "loss": Double(loss),
      ]
      var shares: [String: Double] = [:]
      for type in LayerType.allCases { shares[type.rawValue] = Profiler.seconds[type, default: 0] / total }
      object["time_share"] = shares
      let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    }
  }
}

// Optimizer updates and learning-rate schedules against PyTorch (and SimCLR's LARS) fixtures.
import Foundation
import NN
import Tensors
import XCTest

final class OptimizerTests: XCTestCase {
  func fixture() throws -> SafeTensors {
    let url = try XCTUnwrap(Bundle.module.url(forResource: "optimizers", withExtension: "safetensors", subdirectory: "Fixtures"))
    return try SafeTensors(contentsOf: url.path)
  }

  /// The three parameters of the fixture, with the registry's kinds.
  func parameters() -> (ParameterRegistry, [Parameter]) {
    let registry = ParameterRegistry()
    let conv = registry.parameter("layer1.0.conv1.weight", shape: [4, 3], kind: .convolution, group: .backbone)
    let bn = registry.parameter("bn1.weight", shape: [4], kind: .normalization, group: .backbone)
    let bias = registry.parameter("fc.bias", shape: [4], kind: .linear, group: .head)
    registry.allocate()
    return (registry, [conv, bn, bias])
  }

  func check(_ key: String, _ settings: OptimizerSettings) throws {
    let f = try fixture()
    let (_, params) = parameters()
    for p in params {
      let values = try f.floats("init.\(p.name)")
      for i in 0..<p.count { p.value[i] = values[i] }
    }
    let optimizer = settings.make(params)
    // The same steps zeroing the gradients as they are read: the same values, bit for bit.
    let (_, twins) = parameters()
    for (p, twin) in zip(params, twins) { twin.value.update(from: p.value, count: p.count) }
    let zeroing = settings.make(twins)
    var worst: Float = 0
    for step in 0..<4 {
      for (p, twin) in zip(params, twins) {
        let g = try f.floats("grad.\(step).\(p.name)")
        for i in 0..<p.count { p.gradient[i] = g[i] }
        twin.gradient.update(from: p.gradient, count: p.count)
      }
      optimizer.step()
      zeroing.step(zeroingGradients: true)
      for (p, twin) in zip(params, twins) {
        let g = try f.floats("grad.\(step).\(p.name)")
        XCTAssertEqual(Array(UnsafeBufferPointer(start: twin.value, count: p.count)), Array(UnsafeBufferPointer(start: p.value, count: p.count)), "\(key) zeroing")
        XCTAssertEqual(Array(UnsafeBufferPointer(start: p.gradient, count: p.count)), g, "a plain step leaves the gradient")
        XCTAssertEqual(Elementwise.maxAbs(twin.gradient, count: p.count), 0, "\(key) zeroes \(p.name)'s gradient")
      }
      for p in params {
        let expected = try f.floats("\(key).\(step).\(p.name)")
        let initial = try f.floats("init.\(p.name)")
        // Any move at all: a fixture that left a parameter in place would test nothing.
        XCTAssertGreaterThan(Elementwise.maxAbsDifference(expected, initial, count: p.count), 0, "\(key) must move \(p.name)")
        worst = max(worst, Elementwise.maxAbsDifference(p.value, expected, count: p.count) / Elementwise.maxAbs(expected, count: p.count))
      }
    }
    print(String(format: "%@: worst relative difference from the reference over 4 steps %.2e", key, Double(worst)))
    // The fixture is PyTorch's float32: each step rounds a few elementwise operations (and
    // LARS's norms, sums of 12 squares) at 2^-24 each, on both sides; four steps of that are
    // some 1e-6 of the weights at most.
    XCTAssertLessThan(worst, 1e-5, key)
  }

  func testSGD() throws { try check("sgd", OptimizerSettings(kind: .sgd, learningRate: 0.1, momentum: 0, weightDecay: 1e-2)) }
  func testSGDMomentum() throws { try check("sgd-momentum", OptimizerSettings(kind: .sgd, learningRate: 0.1, momentum: 0.9, weightDecay: 1e-2)) }
  func testSGDNesterov() throws {
    try check("sgd-nesterov", OptimizerSettings(kind: .sgd, learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-2))
  }
  func testAdam() throws { try check("adam", OptimizerSettings(kind: .adam, learningRate: 0.01, weightDecay: 1e-2)) }
  func testAdamW() throws { try check("adamw", OptimizerSettings(kind: .adamw, learningRate: 0.01, weightDecay: 1e-1)) }
  func testLARS() throws {
    try check("lars", OptimizerSettings(kind: .lars, learningRate: 0.5, momentum: 0.9, weightDecay: 1e-2, trustCoefficient: 0.001))
  }

  /// The classifier head takes plain momentum-SGD steps (no trust ratio, no weight decay), as in
  /// SimCLR's reference code; SimCLR's projection head and the backbone stay adapted.
  func testLARSDoesNotAdaptTheClassifierHead() throws {
    let registry = ParameterRegistry()
    let conv = registry.parameter("layer1.0.conv1.weight", shape: [4], kind: .convolution, group: .backbone)
    let projection = registry.parameter("projection.0.weight", shape: [4], kind: .linear, group: .head)
    let classifier = registry.parameter("fc.weight", shape: [4], kind: .linear, group: .head)
    registry.allocate()
    let weights: [Float] = [0.01, -0.02, 0.03, 0.015]
    let gradient: [Float] = [0.5, -1.0, 0.25, 2.0]
    for p in [conv, projection, classifier] {
      for i in 0..<4 {
        p.value[i] = weights[i]
        p.gradient[i] = gradient[i]
      }
    }
    let learningRate: Float = 0.5
    let weightDecay: Float = 1e-2
    let trust: Float = 1e-3
    OptimizerSettings(kind: .lars, learningRate: learningRate, momentum: 0.9, weightDecay: weightDecay, trustCoefficient: trust)
      .make([conv, projection, classifier]).step()
    // The same fp32 expression: at most an ulp apart, and the results are below 1 (ulp 6e-8).
    for i in 0..<4 {
      XCTAssertEqual(classifier.value[i], weights[i] - learningRate * gradient[i], accuracy: 1e-7, "fc.weight[\(i)]")
    }
    let decayed = zip(gradient, weights).map { Double($0) + Double(weightDecay) * Double($1) }
    let ratio = Double(trust) * (weights.map { Double($0 * $0) }.reduce(0, +)).squareRoot() / (decayed.map { $0 * $0 }.reduce(0, +)).squareRoot()
    // fp32 weights of at most 0.03 (ulp 1.9e-9) against Double: a few ulps.
    for p in [conv, projection] {
      for i in 0..<4 {
        XCTAssertEqual(Double(p.value[i]), Double(weights[i]) - Double(learningRate) * ratio * decayed[i], accuracy: 1e-8, "\(p.name)[\(i)]")
      }
    }
    XCTAssertTrue(LARS.isExcluded(classifier))
    XCTAssertFalse(LARS.isExcluded(projection))
  }

  /// Adam's classifier head takes `classifierScale` times the step of any other parameter with
  /// the same gradient (the first step of Adam is about the rate whatever the gradient).
  func testAdamScalesTheClassifiersRate() throws {
    let registry = ParameterRegistry()
    let conv = registry.parameter("layer1.0.conv1.weight", shape: [3], kind: .convolution, group: .backbone)
    let classifier = registry.parameter("fc.weight", shape: [3], kind: .linear, group: .head)
    registry.allocate()
    for p in [conv, classifier] {
      for i in 0..<3 {
        p.value[i] = 0.1 * Float(i)
        p.gradient[i] = [0.5, -2, 0.01][i]
      }
    }
    OptimizerSettings(kind: .adam, learningRate: 1e-3, classifierScale: 30).make([conv, classifier]).step()
    for i in 0..<3 {
      let backboneStep = 0.1 * Float(i) - conv.value[i]
      let headStep = 0.1 * Float(i) - classifier.value[i]
      // Steps read back from fp32 weights up to 0.2 (ulp 1.5e-8): 30 times one such error is
      // 4.5e-7. Adam's first step is rate x g / (|g| + 1e-8), 1e-9 off the rate at |g| = 0.01;
      // 1e-5 is 1% of the rate.
      XCTAssertEqual(headStep, 30 * backboneStep, accuracy: 1e-6, "element \(i)")
      XCTAssertEqual(abs(backboneStep), 1e-3, accuracy: 1e-5, "Adam's first step is about its rate")
    }
  }

  func testSchedulesMatchPyTorch() throws {
    let f = try fixture()
    let cases: [(String, Schedule)] = [
      ("step", Schedule(kind: .step, baseLearningRate: 0.4, totalSteps: 20, milestones: [5, 12], gamma: 0.1)),
      ("cosine", Schedule(kind: .cosine, baseLearningRate: 0.4, totalSteps: 20)),
      ("onecycle", Schedule(kind: .onecycle, baseLearningRate: 0.4, totalSteps: 20)),
    ]
    for (name, schedule) in cases {
      let expected = try f.floats("lr.\(name)")
      // PyTorch's rates in Double, read back as fp32; ours in fp32: 1e-6 of the base rate is
      // some 16 ulps of it.
      for step in 0..<20 {
        XCTAssertEqual(schedule.learningRate(step: step), expected[step], accuracy: 1e-6 * 0.4 + 1e-9, "\(name) step \(step)")
      }
    }
  }

  func testWarmupIsLinearThenCosineDecays() {
    let s = Schedule(kind: .cosine, baseLearningRate: 1, totalSteps: 110, warmupSteps: 10)
    // Rates at most 1 in fp32 (ulp 1.2e-7): 1e-6 is a few ulps of a cosine and a product.
    XCTAssertEqual(s.learningRate(step: 0), 0.1, accuracy: 1e-6)
    XCTAssertEqual(s.learningRate(step: 9), 1, accuracy: 1e-6)
    XCTAssertEqual(s.learningRate(step: 10), 1, accuracy: 1e-6)
    XCTAssertEqual(s.learningRate(step: 60), 0.5, accuracy: 1e-6)
    XCTAssertEqual(s.learningRate(step: 109), 0.5 * (1 + Float(cos(Double.pi * 99 / 100))), accuracy: 1e-6)
  }

  /// `ParameterRegistry.step`: the optimizer zeroes the gradients on the way only when it
  /// updates every parameter that requires a gradient; the next `zeroGradients` then skips
  /// its pass, unless a backward pass has written gradients since.
  func testRegistryStepZeroesOnlyWhatItCovers() {
    let (registry, params) = parameters()
    func fill(_ value: Float) { registry.gradients.data.update(repeating: value, count: registry.gradients.count) }
    func gradients() -> [Float] { Array(UnsafeBufferPointer(start: registry.gradients.data, count: registry.gradients.count)) }
    // An optimizer over two of the three trained parameters: a plain step, then a real zeroing.
    fill(1)
    registry.step(SGD([params[0], params[1]], learningRate: 0.1))
    XCTAssertEqual(gradients(), [Float](repeating: 1, count: registry.gradients.count))
    registry.zeroGradients()
    XCTAssertEqual(gradients(), [Float](repeating: 0, count: registry.gradients.count))
    // The third frozen: the two cover every trained parameter, and their step zeroes.
    params[2].requiresGradient = false
    fill(1)
    params[2].gradient.update(repeating: 0, count: params[2].count)
    registry.step(SGD([params[0], params[1]], learningRate: 0.1))
    XCTAssertEqual(gradients(), [Float](repeating: 0, count: registry.gradients.count))
    // The next zeroGradients has nothing to do (what is written against the contract stays)...
    params[0].gradient[0] = 5
    registry.zeroGradients()
    XCTAssertEqual(params[0].gradient[0], 5, "the pass was skipped")
    // ...and only that one: the following zeroes again.
    registry.zeroGradients()
    XCTAssertEqual(params[0].gradient[0], 0)
    // Gradients written after the step cancel the skip.
    registry.step(SGD([params[0], params[1]], learningRate: 0.1))
    params[1].gradient[0] = 3
    registry.gradientsWritten()
    registry.zeroGradients()
    XCTAssertEqual(gradients(), [Float](repeating: 0, count: registry.gradients.count))
  }

  /// Three steps of a small ResNet with `registry.step` against `optimizer.step` and a full
  /// zeroing: the same weights, bit for bit; a backward after the step cancels the skip.
  func testTrainingWithRegistryStepsMatchesPlainSteps() throws {
    func train(registryStep: Bool) throws -> [Float] {
      let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.125, classes: 3), seed: 9)
      let optimizer = SGD(model.registry, learningRate: 0.05, momentum: 0.9)
      let x = randomTensor([2, 8, 8, 3], seed: 1)
      let dy = randomTensor([2, 3], seed: 2)
      let input = FeatureMap(data: x.data, batch: 2, height: 8, width: 8, channels: 3)
      for _ in 0..<3 {
        model.registry.zeroGradients()
        _ = model.forward(input)
        model.backward(dy.data)
        if registryStep { model.registry.step(optimizer) } else { optimizer.step() }
      }
      // A backward without zeroing first (accumulating into the zeroed gradients), then zeroing.
      _ = model.forward(input)
      model.backward(dy.data)
      model.registry.zeroGradients()
      XCTAssertEqual(Elementwise.maxAbs(model.registry.gradients.data, count: model.registry.gradients.count), 0)
      return Array(UnsafeBufferPointer(start: model.registry.values.data, count: model.registry.values.count))
    }
    XCTAssertEqual(try train(registryStep: true), try train(registryStep: false))
  }

  func testOptimizerTouchesOnlyItsParameters() {
    let (_, params) = parameters()
    for p in params {
      for i in 0..<p.count {
        p.value[i] = 1
        p.gradient[i] = 1
      }
    }
    let optimizer = SGD([params[1]], learningRate: 0.1, momentum: 0)
    optimizer.step()
    XCTAssertEqual(params[0].value[0], 1)
    XCTAssertEqual(params[2].value[0], 1)
    // 1 - 0.1 in fp32: within an ulp of 0.9 (6e-8).
    XCTAssertEqual(params[1].value[0], 0.9, accuracy: 1e-7)
  }
}

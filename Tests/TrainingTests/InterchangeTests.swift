// torchvision weights in and out: imported logits equal torchvision's; export gives back the file.
import Foundation
import NN
import Tensors
import TestSupport
import Training
import XCTest

final class InterchangeTests: XCTestCase {
  func fixture(_ name: String) throws -> String {
    try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures")).path
  }

  func testImportedModelGivesTorchvisionsLogits() throws {
    let (model, assumptions) = try Interchange.importSafeTensors(try fixture("torchvision-resnet18"), depth: .resnet18)
    XCTAssertEqual(assumptions, [], "a plain torchvision state dict needs no assumption")
    XCTAssertEqual(model.configuration.width, 4.0 / 64)
    XCTAssertEqual(model.configuration.stem, .imagenet)
    XCTAssertEqual(model.configuration.classes, 40)
    let io = try SafeTensors(contentsOf: try fixture("torchvision-resnet18-io"))
    let nchw = try io.floats("input", shape: [2, 3, 32, 32])
    let images = Tensor(shape: [2, 32, 32, 3])
    for n in 0..<2 { for c in 0..<3 { for y in 0..<32 { for x in 0..<32 {
      images.data[((n * 32 + y) * 32 + x) * 3 + c] = nchw[((n * 3 + c) * 32 + y) * 32 + x]
    } } } }
    model.setBatchNormTraining(false)
    let logits = model.forward(FeatureMap(data: images.data, batch: 2, height: 32, width: 32, channels: 3))
    let expected = try io.floats("logits", shape: [2, 40])
    let error = relativeError(logits, expected, count: 80)
    print(String(format: "imported torchvision ResNet-18: logits max relative difference %.2e", Double(error)))
    // PyTorch's float32 logits: both sides round ~20 eval-mode layers in fp32, each a few 1e-7
    // of the logits off float64 (ReferenceFixtureTests' eval case measures 3e-7); a misplaced
    // or mistransposed tensor moves them by O(1).
    XCTAssertLessThan(error, 1e-4)
  }

  func testExportRoundTripsThroughACheckpoint() throws {
    let source = try fixture("torchvision-resnet18")
    let model = try Interchange.importSafeTensors(source, depth: .resnet18).model
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-io-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let ckpt = dir.appendingPathComponent("imported.ckpt").path
    try Interchange.modelCheckpoint(model, kind: "import").write(to: ckpt)
    let reloaded = try Interchange.model(from: try Checkpoint.read(ckpt), source: ckpt)
    let out = dir.appendingPathComponent("exported.safetensors").path
    try Interchange.exportSafeTensors(reloaded, to: out)
    let original = try SafeTensors(contentsOf: source)
    let exported = try SafeTensors(contentsOf: out)
    XCTAssertEqual(original.names, exported.names)
    for name in original.names {
      XCTAssertEqual(original.entries[name]!.shape, exported.entries[name]!.shape, name)
      XCTAssertEqual(original.entries[name]!.dtype, exported.entries[name]!.dtype, name)
      XCTAssertEqual(try original.floats(name), try exported.floats(name), name)
    }
  }

  func testImportRefusesAnotherArchitecture() throws {
    XCTAssertThrowsError(try Interchange.importSafeTensors(try fixture("torchvision-resnet18"), depth: .resnet50)) { error in
      XCTAssertTrue("\(error)".contains("torchvision-resnet18.safetensors"), "\(error)")
    }
  }

  /// The fixture rewritten as published weights often are: `rename` maps each name (nil drops
  /// the tensor), `extra` adds tensors; counters stay int64, the rest float32.
  func variant(_ name: String, rename: (String) -> String?, extra: [String] = []) throws -> String {
    let original = try SafeTensors(contentsOf: try fixture("torchvision-resnet18"))
    var tensors: [(name: String, dtype: SafeTensors.DType, shape: [Int], bytes: Data)] = []
    for source in original.names {
      guard let target = rename(source) else { continue }
      let entry = original.entries[source]!
      if source.hasSuffix("num_batches_tracked") {
        var count = Int64(try original.floats(source)[0]).littleEndian
        tensors.append((target, .i64, entry.shape, Data(bytes: &count, count: 8)))
      } else {
        tensors.append((target, .f32, entry.shape, SafeTensors.bytes(of: try original.floats(source))))
      }
    }
    for name in extra { tensors.append((name, .f32, [2], SafeTensors.bytes(of: [1, 2]))) }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-published-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name + ".safetensors").path
    try SafeTensors.write(tensors, to: path)
    return path
  }

  func testImportAcceptsPublishedVariantsAndSaysWhatItAssumed() throws {
    let reference = try Interchange.importSafeTensors(try fixture("torchvision-resnet18"), depth: .resnet18).model.namedTensors()
    let withoutCounters: (String) -> String? = { $0.hasSuffix("num_batches_tracked") ? nil : $0 }
    let cases: [(file: String, rename: (String) -> String?, says: [String])] = [
      ("no-counters", withoutCounters, ["num_batches_tracked"]),
      ("ddp", { "module." + $0 }, ["module."]),
      ("ddp-no-counters", { withoutCounters($0).map { "module." + $0 } }, ["module.", "num_batches_tracked"]),
    ]
    for c in cases {
      let (model, assumptions) = try Interchange.importSafeTensors(try variant(c.file, rename: c.rename), depth: .resnet18)
      XCTAssertEqual(assumptions.count, c.says.count, "\(c.file): \(assumptions)")
      for (assumption, word) in zip(assumptions, c.says) { XCTAssertTrue(assumption.contains(word), "\(c.file): \(assumption)") }
      for (a, b) in zip(model.namedTensors(), reference) {
        XCTAssertEqual(a.name, b.name)
        XCTAssertEqual(a.values, b.name.hasSuffix("num_batches_tracked") && c.says.contains("num_batches_tracked") ? [0] : b.values, "\(c.file): \(a.name)")
      }
    }
  }

  func testImportStillRefusesWhatDoesNotFitByName() throws {
    // One counter missing while the others are there is a damaged file, not a float-only one.
    let oneCounter = try variant("one-counter-missing", rename: { $0 == "layer2.0.bn1.num_batches_tracked" ? nil : $0 })
    XCTAssertThrowsError(try Interchange.importSafeTensors(oneCounter, depth: .resnet18)) { error in
      XCTAssertTrue("\(error)".contains("layer2.0.bn1.num_batches_tracked"), "\(error)")
    }
    // The prefix is stripped, but a tensor the model does not have is still named.
    let extra = try variant("ddp-extra", rename: { "module." + $0 }, extra: ["module.layer9.weight"])
    XCTAssertThrowsError(try Interchange.importSafeTensors(extra, depth: .resnet18)) { error in
      XCTAssertTrue("\(error)".contains("layer9.weight"), "\(error)")
    }
    // A prefix on only some names is not a DistributedDataParallel state: nothing is stripped.
    let mixed = try variant("mixed-prefix", rename: { $0.hasPrefix("fc.") ? "module." + $0 : $0 })
    XCTAssertThrowsError(try Interchange.importSafeTensors(mixed, depth: .resnet18)) { error in
      XCTAssertTrue("\(error)".contains("fc."), "\(error)")
    }
  }
}

// torchvision weights in and out: imported logits equal torchvision's; export gives back the file.
import Foundation
import NN
import Tensors
import Training
import XCTest

final class InterchangeTests: XCTestCase {
  func fixture(_ name: String) throws -> String {
    try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures")).path
  }

  func testImportedModelGivesTorchvisionsLogits() throws {
    let model = try Interchange.importSafeTensors(try fixture("torchvision-resnet18"), depth: .resnet18)
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
    let error = Elementwise.maxAbsDifference(logits, expected, count: 80) / Elementwise.maxAbs(expected, count: 80)
    print(String(format: "imported torchvision ResNet-18: logits max relative difference %.2e", Double(error)))
    XCTAssertLessThan(error, 1e-4)
  }

  func testExportRoundTripsThroughACheckpoint() throws {
    let source = try fixture("torchvision-resnet18")
    let model = try Interchange.importSafeTensors(source, depth: .resnet18)
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
}

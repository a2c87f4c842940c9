// Seed inputs for the fuzz targets, made by fairtune's own writers (so they are valid files of
// today's formats) and kept small (libFuzzer mutates them, and bounds its inputs by the largest).
import CelebAFormat
import Data
import Fairness
import Foundation
import NN
import Tensors
import Training

extension FuzzTarget {
  /// The seeds of this target: name and bytes. Each one is accepted by its reader.
  public func seeds() throws -> [(name: String, bytes: [UInt8])] {
    let plan = SynthesisPlan(train: 3, validation: 1, test: 1, imageSize: 4, seed: 11)
    let labels = try Synthesizer.labels(plan, from: nil)
    switch self {
    case .checkpoint:
      let tensors = [
        NamedTensor(name: "conv1.weight", shape: [2, 1, 3, 3], values: (0..<18).map { Float($0) / 7 - 1 }),
        NamedTensor(name: "bn1.running_var", shape: [2], values: [1, 0.5]),
        NamedTensor(name: "fc.bias", shape: [3], values: [0, 0, 0]),
      ]
      let metadata: [String: Any] = ["kind": "pretrain", "epoch": 2, "step": 10, "options": ["width": 0.5]]
      return [
        ("small.ckpt", try Checkpoint(metadata: metadata, tensors: tensors).encoded()),
        ("empty.ckpt", try Checkpoint(metadata: [:], tensors: []).encoded()),
        ("resnet18-tiny.ckpt", try Interchange.modelCheckpoint(try ResNet(Self.tinyModel), kind: "import").encoded()),
      ]
    case .safetensors:
      let floats = SafeTensors.bytes(of: [0.25, -1, 3, 1e-3, 7, 0])
      let halves = Data([0x00, 0x3C, 0x00, 0xC0])  // 1.0, -2.0
      return [
        (
          "model.safetensors",
          try Self.bytesWritten {
            try SafeTensors.write(
              [("conv1.weight", .f32, [2, 3], floats), ("bn1.num_batches_tracked", .i64, [], Data(count: 8)), ("head.bias", .f16, [2], halves)],
              metadata: ["format": "pt"], to: $0)
          }
        )
      ]
    case .attributes:
      let file = Synthesizer.attributeFile(labels: labels, count: plan.count)
      let few = "2\nSmiling Young Male\n000001.jpg 1 -1 1\n000002.jpg -1 -1 1\n"
      return [("list_attr_celeba.txt", file), ("three_attributes.txt", Array(few.utf8))]
    case .partition:
      return [("list_eval_partition.txt", Synthesizer.partitionFile(plan))]
    case .scores:
      var text = "image," + CelebA.attributeNames.joined(separator: ",") + "\n"
      for image in 0..<plan.count {
        let row = (0..<CelebA.attributeCount).map { attribute in
          labels[image * CelebA.attributeCount + attribute] ? "0.\(7 + attribute % 3)" : "-1.5e-1"
        }
        text += Synthesizer.imageName(image) + "," + row.joined(separator: ",") + "\n"
      }
      return [("scores.csv", Array(text.utf8)), ("small.csv", Array("image,Smiling,Male\na.jpg,0.5,-2\nb.jpg,1e3,0\n".utf8))]
    case .packed:
      return [("pack.bin", try Self.packedSeed(plan, labels: labels))]
    case .journal:
      return [("journal.jsonl", try Self.journalSeed())]
    case .space:
      let full = """
        {"optimizers": {"sgd": [1e-3, 1.0], "adamw": [1e-5, 3e-3]}, "schedules": ["cosine", "onecycle"],
         "weight_decay": [1e-6, 1e-3], "zero_weight_decay": 0.25, "min_epochs": 2, "warmup_fraction": 0.2}
        """
      return [("space.json", Array(full.utf8)), ("lars.json", Array(#"{"optimizers": {"lars": [0.01, 5]}}"#.utf8))]
    }
  }

  /// ResNet-18 at 1/64 width (1 to 8 channels) with a 40-attribute head: a few kilobytes.
  static let tinyModel = ResNetConfiguration(depth: .resnet18, stem: .small, width: 1.0 / 64, classes: 40)

  /// The files of a real 5-image pack at 4x4 pixels, joined with `partSeparator`.
  private static func packedSeed(_ plan: SynthesisPlan, labels: [Bool]) throws -> [UInt8] {
    var result: [UInt8] = []
    try withScratch { directory in
      let source = try OutputDirectory(directory.appendingPathComponent("celeba"), option: "seed")
      try Synthesizer.write(plan, labels: labels, into: source)
      try source.commit()
      let packed = try OutputDirectory(directory.appendingPathComponent("packed"), option: "seed")
      _ = try Packer.pack(
        celebA: source.destination, imageSize: plan.imageSize, into: packed, skipBadImages: false)
      try packed.commit()
      let files = [PackedDataset.labelFile, "images-000.bin", PackedDataset.namesFile]
      let parts = try files.map { [UInt8](try Data(contentsOf: packed.destination.appendingPathComponent($0))) }
      result = Array(parts.joined(separator: Array(partSeparator.utf8)))
    }
    return result
  }

  /// A journal with a finished, a stopped, a failed and an interrupted trial, and rung metrics.
  private static func journalSeed() throws -> [UInt8] {
    var result: [UInt8] = []
    try withScratch { directory in
      let path = directory.appendingPathComponent("journal.jsonl").path
      let journal = try Journal(path: path)
      let space = SearchSpace.standard
      for index in 0..<4 {
        let strategy = index < 2 ? "full" : "bn-stats"
        let id = try journal.start(space.draw(seed: 3, strategy: strategy, index: index, maxEpochs: 3), index: index, group: index % 2)
        try journal.rung(id, epoch: 1, metric: 0.3 + Double(index) / 10)
        switch index {
        case 0: try journal.end(id, status: .finished, metric: 0.41, seconds: 12.5, epochsRun: 3)
        case 1: try journal.end(id, status: .stopped, metric: 0.2, seconds: 4, reason: "below the rung cutoff", epochsRun: 1)
        case 2: try journal.end(id, status: .failed, metric: nil, seconds: 1, reason: "training diverged")
        default: break  // left running: the next open records it interrupted
        }
      }
      result = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
    return result
  }

  /// The bytes a writer that only writes to a path puts there.
  private static func bytesWritten(_ write: (String) throws -> Void) throws -> [UInt8] {
    var result: [UInt8] = []
    try withScratch { directory in
      let path = directory.appendingPathComponent("file").path
      try write(path)
      result = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
    return result
  }
}

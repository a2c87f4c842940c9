// Small synthetic face datasets for tests that train or run a backbone: CelebA-format faces drawn
// at 24 px and packed at 16 px.
import Data
import Foundation

enum TinyDataset {
  /// Synthesizes and packs a dataset under a new temporary folder; returns the packed directory
  /// (its parent is the folder to remove).
  static func make(_ name: String, train: Int, validation: Int, test: Int, seed: UInt64) throws -> URL {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-\(name)-\(UUID().uuidString)")
    let plan = SynthesisPlan(train: train, validation: validation, test: test, imageSize: 24, seed: seed)
    let synth = try OutputDirectory(root.appendingPathComponent("synth"), option: "--out")
    try Synthesizer.write(plan, labels: try Synthesizer.labels(plan, from: nil), into: synth)
    try synth.commit()
    let packed = try OutputDirectory(root.appendingPathComponent("packed"), option: "--out")
    _ = try Packer.pack(celebA: root.appendingPathComponent("synth"), imageSize: 16, into: packed, skipBadImages: false)
    try packed.commit()
    return root.appendingPathComponent("packed")
  }
}

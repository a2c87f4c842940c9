// Where training finds its data: a packed directory as it is, or a CelebA-format folder packed
// once into a cache and reused.
import CelebAFormat
import Foundation

public enum TrainingData {
  /// The cache for a run directory: a sibling folder, so runs over the same data share it.
  public static func cache(forRun run: URL) -> URL {
    run.standardizedFileURL.deletingLastPathComponent().appendingPathComponent(".fairtune-packed")
  }

  /// Opens `data` for training at `imageSize`: a packed dataset directly; a CelebA-format folder
  /// (list_attr_celeba.txt, list_eval_partition.txt, img_align_celeba/) through its packed copy
  /// in `cache`, made on first use. Under mpirun, let one rank call this first (then a
  /// barrier): concurrent packers each write their own temporary copy and only the first is
  /// kept, which is safe but wastes the others' work.
  public static func open(
    _ data: URL, imageSize: Int, cache: URL, skipBadImages: Bool = false, log: (String) -> Void = { _ in }
  ) throws -> PackedDataset {
    let manager = FileManager.default
    if manager.fileExists(atPath: data.appendingPathComponent(PackedDataset.labelFile).path) {
      let dataset = try PackedDataset(path: data)
      try check(
        dataset, imageSize: imageSize,
        advice:
          "pack the source again: `fairtune pack --celeba SOURCE --image-size \(imageSize) --out NEW`, and train on NEW"
      )
      return dataset
    }
    guard manager.fileExists(atPath: data.appendingPathComponent(CelebAListing.attributeFile).path) else {
      throw PackError(
        data.path,
        "is neither a packed dataset (\(PackedDataset.labelFile)) nor a CelebA-format folder (\(CelebAListing.attributeFile)); make one with `fairtune synth --out DIR` or pack one with `fairtune pack`."
      )
    }
    let packed = cache.appendingPathComponent("\(data.standardizedFileURL.lastPathComponent)-\(imageSize)px")
    if manager.fileExists(atPath: packed.appendingPathComponent(PackedDataset.labelFile).path) {
      log("using the packed copy of \(data.path) in \(packed.path)")
      return try PackedDataset(path: packed)
    }
    log("packing \(data.path) at \(imageSize)x\(imageSize) into \(packed.path) (once; later runs reuse it)")
    let output = try OutputDirectory(packed, option: "the cache")
    let report = try Packer.pack(celebA: data, imageSize: imageSize, into: output, skipBadImages: skipBadImages)
    do {
      try output.commit()
    } catch  where manager.fileExists(atPath: packed.path) {
      log("another process packed \(packed.path) first; using its copy")
    }
    if !report.skipped.isEmpty { log("warning: left out \(report.skipped.count) missing or undecodable images") }
    return try PackedDataset(path: packed)
  }

  private static func check(_ dataset: PackedDataset, imageSize: Int, advice: String) throws {
    guard dataset.imageSize == imageSize else {
      throw PackError(
        dataset.path.path,
        "is packed at \(dataset.imageSize)x\(dataset.imageSize) but --image-size is \(imageSize); \(advice).")
    }
  }
}

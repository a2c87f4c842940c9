// Temporary directories and small CelebA-format datasets for the data tests.
import CelebAFormat
import Foundation
import XCTest

@testable import Data

/// A fresh directory under the system's temporary folder, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-data-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
  return url
}

/// Writes a synthetic dataset of `plan` into `directory` and returns its labels.
@discardableResult
func writeSynthetic(_ plan: SynthesisPlan, to directory: URL) throws -> [Bool] {
  let labels = try Synthesizer.labels(plan, from: nil)
  let output = try OutputDirectory(directory, option: "--out")
  try Synthesizer.write(plan, labels: labels, into: output)
  try output.commit()
  return labels
}

/// The names in `directory`, hidden ones included: what a failed command left behind.
func contents(of directory: URL) -> [String] {
  ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
}

/// A CelebA attribute file with the given rows (`values` of 40 per row, 1 or -1), a count line
/// `count` (default: the number of rows) and CelebA's names (or `names`).
func attributeText(rows: [(String, [Int])], count: Int? = nil, names: [String] = CelebA.attributeNames) -> String {
  var text = "\(count ?? rows.count)\n" + names.joined(separator: " ") + " \n"
  for (name, values) in rows {
    text += name + values.map { $0 == 1 ? "  1" : " \($0)" }.joined() + "\n"
  }
  return text
}

let everyOther = (0..<40).map { $0 % 2 == 0 ? 1 : -1 }

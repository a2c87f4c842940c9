// fairtune-fuzz: replays files through the fuzz targets (see FuzzTargets) and writes their seed
// corpora. The fuzzing binary itself is fuzz/driver.swift, linked by scripts/fuzz.sh.
import Foundation
import FuzzTargets

let usage = """
  usage: fairtune-fuzz replay TARGET FILE_OR_DIR...   run files through TARGET, print each outcome
         fairtune-fuzz seed DIR                      write every target's seeds into DIR/TARGET/
  Fuzzing: scripts/fuzz.sh [SECONDS] [TARGET...]

  Targets, one per reader of outside data:
  \(FuzzTarget.allCases.map { "  \($0.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \($0.summary)" }.joined(separator: "\n"))

  A reader passes when it accepts the input or rejects it with an error that names its file;
  a trap, a sanitizer report, a leak or a timeout is a failure.
  """

func fail(_ message: String) -> Never {
  FileHandle.standardError.write(Data("fairtune-fuzz: \(message)\n".utf8))
  exit(2)
}

func target(_ name: String) -> FuzzTarget {
  guard let target = FuzzTarget(rawValue: name) else {
    fail("unknown target '\(name)'; the targets are \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
  }
  return target
}

/// The files named, with directories expanded to the files in them (sorted).
func files(_ paths: ArraySlice<String>) -> [String] {
  paths.flatMap { path -> [String] in
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fail("\(path) does not exist") }
    guard isDirectory.boolValue else { return [path] }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted().map { path + "/" + $0 }
  }
}

let arguments = CommandLine.arguments
guard arguments.count >= 2, !["-h", "--help", "help"].contains(arguments[1]) else {
  print(usage)
  exit(arguments.count >= 2 ? 0 : 2)
}

switch arguments[1] {
case "replay":
  guard arguments.count >= 4 else { fail("replay needs a target and files\n\(usage)") }
  let chosen = target(arguments[2])
  var accepted = 0
  let inputs = files(arguments[3...])
  for path in inputs {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    if let message = chosen.run([UInt8](data)) {
      print("\(path): rejected: \(message.split(separator: "\n").first ?? "")")
    } else {
      accepted += 1
      print("\(path): accepted")
    }
  }
  print("\(chosen.rawValue): \(inputs.count) inputs, \(accepted) accepted, \(inputs.count - accepted) rejected cleanly")

case "seed":
  guard arguments.count == 3 else { fail("seed needs one directory\n\(usage)") }
  for chosen in FuzzTarget.allCases {
    let folder = URL(fileURLWithPath: arguments[2]).appendingPathComponent(chosen.rawValue)
    do {
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      for seed in try chosen.seeds() {
        if let message = chosen.run(seed.bytes) { fail("the \(chosen.rawValue) seed \(seed.name) is rejected: \(message)") }
        try Data(seed.bytes).write(to: folder.appendingPathComponent(seed.name))
        print("\(folder.path)/\(seed.name): \(seed.bytes.count) bytes")
      }
    } catch {
      fail("cannot write the seeds of \(chosen.rawValue) into \(folder.path): \(error)")
    }
  }

default:
  fail("unknown command '\(arguments[1])'; fuzzing itself is scripts/fuzz.sh\n\(usage)")
}

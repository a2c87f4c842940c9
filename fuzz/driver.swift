// The libFuzzer entry points. scripts/fuzz.sh compiles this file with
// `swiftc -sanitize=fuzzer,address -parse-as-library` against the package's modules, built with
// the same sanitizers; the environment variable FAIRTUNE_FUZZ_TARGET picks the reader.
import Foundation
import FuzzTargets

nonisolated(unsafe) var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutableRawPointer) -> CInt {
  let name = ProcessInfo.processInfo.environment["FAIRTUNE_FUZZ_TARGET"] ?? ""
  guard let target = FuzzTarget(rawValue: name) else {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
    FileHandle.standardError.write(Data("set FAIRTUNE_FUZZ_TARGET to one of \(names) (got '\(name)')\n".utf8))
    exit(2)
  }
  selected = target
  return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
  selected!.run(bytes)
  return 0
}

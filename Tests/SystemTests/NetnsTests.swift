// Two "hosts" in network namespaces, MPI over TCP between them: the same losses and weights as
// one process.
import Foundation
import Tensors
import TestSupport
import XCTest

final class NetnsTests: XCTestCase {
  static let harness = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("cluster/netns.sh").path

  func testTwoHostsOverTCPTrainLikeOneProcess() throws {
    guard getuid() == 0 else {
      throw XCTSkip("network namespaces need root; this process cannot create them")
    }
    let up = try Harness.run("/bin/bash", [Self.harness, "up", "2"], limit: 60)
    defer { _ = try? Harness.run("/bin/bash", [Self.harness, "down"], limit: 60) }
    if up.status != 0 {
      throw XCTSkip("cannot create network namespaces here: \(up.output)")
    }
    let arguments = [
      "bench", "--model", "resnet18", "--width", "0.0625", "--stem", "small", "--image-size", "12",
      "--classes", "5", "--steps", "3", "--warmup", "1", "--learning-rate", "0.2", "--threads", "1", "--batch", "10",
    ]
    let single = Harness.temporaryFile("netns-single.safetensors")
    let hosts = Harness.temporaryFile("netns-hosts.safetensors")
    let one = try Harness.run(Harness.binary, arguments + ["--dump", single])
    XCTAssertEqual(one.status, 0, one.output)
    let two = try Harness.run("/bin/bash", [Self.harness, "run", "2", "--", Harness.binary] + arguments + ["--dump", hosts], limit: 180)
    XCTAssertEqual(two.status, 0, two.output)
    XCTAssertTrue(two.output.contains("MPI: 2 ranks"), two.output)
    let a = try SafeTensors(contentsOf: single)
    let b = try SafeTensors(contentsOf: hosts)
    let la = try a.floats("losses")
    let lb = try b.floats("losses")
    var worst: Float = 0
    for i in la.indices { worst = max(worst, abs(la[i] - lb[i]) / abs(la[i])) }
    print(String(format: "2 hosts over TCP vs 1 process: loss max relative difference %.2e", worst))
    XCTAssertLessThan(worst, 1e-5)
    let wa = try a.floats("fc.weight")
    let wb = try b.floats("fc.weight")
    XCTAssertLessThan(relativeError(wb, wa), 1e-5)
  }
}

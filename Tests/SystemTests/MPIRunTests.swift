// Runs the fairtune binary under mpirun with 1, 2 and 3 ranks: equivalence of synchronized
// data parallelism with one process, and the start-up checks and fault handling.
import Foundation
import Tensors
import TestSupport
import XCTest

final class MPIRunTests: XCTestCase {
  /// A tiny ResNet-18 on one fixed global batch.
  let tinyBench = [
    "bench", "--model", "resnet18", "--width", "0.0625", "--stem", "small", "--image-size", "12",
    "--classes", "5", "--learning-rate", "0.2", "--threads", "1",
  ]
  /// ... trained for a few steps.
  var training: [String] { tinyBench + ["--steps", "3", "--warmup", "1"] }

  func dump(ranks: Int, batch: Int, bn: String = "sync", extra: [String] = []) throws -> SafeTensors {
    let path = Harness.temporaryFile("np\(ranks)-b\(batch)-\(bn).safetensors")
    let result = try Harness.mpi(ranks, training + ["--batch", "\(batch)", "--bn", bn, "--dump", path] + extra)
    XCTAssertEqual(result.status, 0, result.output)
    return try SafeTensors(contentsOf: path)
  }

  /// max |a - b| / max |a| over every tensor of two dumps, the loss series included.
  func difference(_ a: SafeTensors, _ b: SafeTensors) throws -> (loss: Float, weights: Float) {
    XCTAssertEqual(a.names, b.names)
    var weights: Float = 0
    for name in a.names where name != "losses" && !name.hasSuffix("num_batches_tracked") {
      weights = max(weights, relativeError(try a.floats(name), try b.floats(name)))
    }
    return (relativeError(try a.floats("losses"), try b.floats("losses")), weights)
  }

  /// Synchronized data parallelism computes one process's step: the first step's gradients from
  /// the same weights on 1, 2 and 3 ranks, at a batch that splits evenly (12) and one that does
  /// not (10). One step, not a trajectory: over several steps a rounding difference that flips a
  /// ReLU changes everything after it (OpenBLAS's Sandybridge kernels do that at batch 10), so a
  /// trajectory has no bound.
  func testOneTwoAndThreeRanksComputeOneProcesssStep() throws {
    for batch in [12, 10] {
      let one = try gradients(ranks: 1, precision: "fp32", batch: batch)
      let rounding = relativeNormDifference(try gradients(ranks: 1, precision: "bf16-emulated", batch: batch), one, relativeTo: one)
      for ranks in [2, 3] {
        let split = relativeNormDifference(try gradients(ranks: ranks, precision: "fp32", batch: batch), one, relativeTo: one)
        print(String(format: "sync BN, batch %d, np 1 vs np %d: one step's gradients %.2e (relative L2); bf16 against fp32 on one rank %.2e", batch, ranks, split, rounding))
        // Bound, as a share of bfloat16's own effect on the same step (so it holds however much
        // the sums cancel): the split changes only the fp32 order of sums, BatchNorm's statistics
        // over at most n = 12 x 144 = 1728 values a channel and the gradient all-reduce.
        // Reordering n terms moves a sum by about sqrt(n) 2^-24 of its terms' magnitude (rounding
        // errors as independent, the probabilistic bound); rounding each operand to bfloat16 moves
        // it by about 2^-9 / sqrt(n) of it; both travel through the same network, so the ratio
        // is about n 2^-15 = 0.053. Local BatchNorm, or a lost share, moves the gradient by the
        // whole of it (the next test).
        XCTAssertLessThan(split, 0.053 * rounding, "batch \(batch) on \(ranks) ranks")
      }
    }
  }

  /// Every gradient of a `--dump-gradients` file, in name order, as one vector.
  static func gradients(in path: String) throws -> [Float] {
    let file = try SafeTensors(contentsOf: path)
    return try file.names.filter { $0.hasPrefix("grad.") }.flatMap { try file.floats($0) }
  }

  /// The first step's gradients, summed over the ranks, from the initial weights (the same on
  /// every rank count).
  func gradients(ranks: Int, precision: String, batch: Int = 12, extra: [String] = []) throws -> [Float] {
    let path = Harness.temporaryFile("grad-np\(ranks)-\(precision)-b\(batch)\(extra.joined()).safetensors")
    let result = try Harness.mpi(
      ranks, tinyBench + ["--steps", "1", "--warmup", "0", "--batch", "\(batch)", "--precision", precision, "--dump-gradients", path] + extra)
    XCTAssertEqual(result.status, 0, result.output)
    return try Self.gradients(in: path)
  }



  /// bfloat16 (emulated, so on any CPU) on 1, 2 and 3 ranks: one step's gradients from the same
  /// weights, with the backbone frozen (BatchNorm on its running statistics), so every image's
  /// forward and backward is the same arithmetic on every rank count and the split changes only
  /// the fp32 order of the sums over the batch that come after the last bfloat16 rounding: the
  /// head's weight gradient and the all-reduce. Trajectories over several steps are no basis for
  /// a bound: a rounding that lands on the other side of a bfloat16 boundary changes the next
  /// step's operands by a whole bfloat16 step, and that amplifies chaotically (docs/precision.md).
  func testOneStepGradientsInBFloat16AreAlikeOnOneTwoAndThreeRanks() throws {
    let frozen = ["--strategy", "frozen"]
    let one = try gradients(ranks: 1, precision: "bf16-emulated", extra: frozen)
    let fp32 = try gradients(ranks: 1, precision: "fp32", extra: frozen)
    let rounding = relativeNormDifference(one, fp32, relativeTo: fp32)
    XCTAssertGreaterThan(rounding, 0, "bf16-emulated computed exactly as fp32 does: the precision was not applied")
    for ranks in [2, 3] {
      let many = try gradients(ranks: ranks, precision: "bf16-emulated", extra: frozen)
      let split = relativeNormDifference(one, many, relativeTo: fp32)
      print(String(format: "bf16-emulated, frozen backbone, one step, np 1 vs np %d: gradients %.2e (relative L2); bf16 vs fp32 on one rank: %.2e", ranks, split, rounding))
      // Bound, as a share of bfloat16's own effect (so it holds however much the sums cancel):
      // summing 12 terms in another fp32 order moves a sum by at most 11 x 2^-24 of the sum of
      // their magnitudes S; rounding each of a term's two operands to bfloat16 moves it by up to
      // 2^-9 of itself with a random sign, so bf16's error is about 2^-9 x S / sqrt(12) > 2^-11 x S.
      // The ratio is at most 11 x 2^-24 / 2^-11 = 1.3e-3 whatever kernel OpenBLAS picks. A split
      // that changed one bfloat16 rounding of an image would move a term by 2^-8 of itself, on the
      // order of bf16's whole effect.
      XCTAssertLessThan(split, 2e-3 * rounding, "\(ranks) ranks")
    }
  }

  /// bn-recal's pass over 37 train images in batches of 10 (on 3 ranks, shares of 4, 3, 3 and of
  /// 3, 2, 2 in the last batch): every BatchNorm's statistics alike on 1, 2 and 3 ranks.
  func testBnRecalStatisticsAreAlikeOnOneTwoAndThreeRanks() throws {
    let raw = Harness.temporaryFile("recal-synth")
    let packed = Harness.temporaryFile("recal-packed")
    for directory in [raw, packed] { try? FileManager.default.removeItem(atPath: directory) }
    XCTAssertEqual(try Harness.run(Harness.binary, ["synth", "--out", raw, "--train", "37", "--val", "4", "--test", "4", "--image-size", "24", "--seed", "3"]).status, 0)
    XCTAssertEqual(try Harness.run(Harness.binary, ["pack", "--celeba", raw, "--out", packed, "--image-size", "16"]).status, 0)
    func statistics(ranks: Int) throws -> [String: [Float]] {
      let out = Harness.temporaryFile("recal-np\(ranks)")
      try? FileManager.default.removeItem(atPath: out)
      let result = try Harness.mpi(ranks, [
        "finetune", "--data", packed, "--random-backbone", "--strategy", "bn-recal", "--bn-balance", "Male", "--model", "resnet18",
        "--width", "0.125", "--stem", "small", "--batch", "10", "--epochs", "1", "--threads", "1", "--out", out,
      ])
      XCTAssertEqual(result.status, 0, result.output)
      let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/recalibration.json"))) as? [String: Any]
      var layers: [String: [Float]] = [:]
      for layer in file?["layers"] as? [[String: Any]] ?? [] {
        let name = layer["name"] as? String ?? "?"
        layers[name + ".mean"] = (layer["mean"] as? [NSNumber] ?? []).map(\.floatValue)
        layers[name + ".variance"] = (layer["variance"] as? [NSNumber] ?? []).map(\.floatValue)
      }
      return layers
    }
    let one = try statistics(ranks: 1)
    XCTAssertEqual(one.count, 2 * 20, "ResNet-18 has 20 BatchNorms")
    for ranks in [2, 3] {
      let many = try statistics(ranks: ranks)
      XCTAssertEqual(Set(one.keys), Set(many.keys))
      var worst: Float = 0
      for (name, values) in one { if let other = many[name] { worst = max(worst, relativeError(values, other)) } }
      print(String(format: "bn-recal, np 1 vs np %d: every BatchNorm's statistics within %.2e (max relative)", ranks, worst))
      // Float rounding: the sums are added in another order on each rank count, and upstream
      // layers normalise each batch with statistics summed in another order. Each is some
      // 2^-24 x sqrt(terms), grown by the layers above as fp32 errors grow in the float64
      // fixtures' training mode (up to 1000 x 2^-24 = 6e-5); measured 2.3e-7 to 1.2e-6 on four
      // OpenBLAS cores.
      XCTAssertLessThan(worst, 1e-4, "\(ranks) ranks")
    }
  }

  /// The priority schedule (BatchNorm's sums on their own communicator, the gradient buckets in
  /// chunks, here of 64 bytes so that the tiny model's buckets split into many) against fifo.
  /// On 2 ranks every element of a sum is a + b whichever way the bytes travel (fp32 addition is
  /// commutative), so the trained weights are the same bits. On 3 ranks the chunking may change
  /// which rank's partial sum meets which first: the order of fp32 sums only, bounded as the rank
  /// split above (a share of bfloat16's effect on the same step).
  func testPriorityAndFifoSchedulesTrainAlike() throws {
    let chunked = ["--debug-chunk-bytes", "64"]
    let fifo = try dump(ranks: 2, batch: 12, extra: ["--collectives", "fifo"])
    let priority = try dump(ranks: 2, batch: 12, extra: ["--collectives", "priority"] + chunked)
    XCTAssertEqual(fifo.names, priority.names)
    for name in fifo.names {
      XCTAssertEqual(try fifo.floats(name), try priority.floats(name), "\(name): priority and fifo trained different bits on 2 ranks")
    }
    let one = try gradients(ranks: 1, precision: "fp32")
    let rounding = relativeNormDifference(try gradients(ranks: 1, precision: "bf16-emulated"), one, relativeTo: one)
    let three = try gradients(ranks: 3, precision: "fp32", extra: ["--collectives", "fifo"])
    let threePriority = try gradients(ranks: 3, precision: "fp32", extra: ["--collectives", "priority"] + chunked)
    let apart = relativeNormDifference(threePriority, three, relativeTo: one)
    print(String(format: "np 3, priority (64-byte chunks) against fifo: one step's gradients %.2e (relative L2); bf16's effect %.2e", apart, rounding))
    XCTAssertLessThan(apart, 0.053 * rounding)
  }

  /// The bfloat16 wire through MPI's user-defined operation, on 2 ranks and both schedules: every
  /// summed gradient is a bfloat16 value widened to fp32 (its low 16 bits are 0), and the sums
  /// differ from the fp32 wire's (the rounding happened).
  func testTheBFloat16WireCarriesBFloat16Sums() throws {
    let exact = try gradients(ranks: 2, precision: "fp32")
    for schedule in ["fifo", "priority"] {
      let wire = try gradients(ranks: 2, precision: "fp32", extra: ["--gradient-wire", "bf16", "--collectives", schedule, "--debug-chunk-bytes", "64"])
      XCTAssertEqual(wire.count, exact.count)
      XCTAssertTrue(wire.allSatisfy { $0.bitPattern & 0xFFFF == 0 }, "\(schedule): a summed gradient that is not a bfloat16 value")
      let apart = relativeNormDifference(wire, exact, relativeTo: exact)
      print(String(format: "2 ranks, %@, bf16 wire against fp32 wire: one step's gradients %.2e (relative L2)", schedule, apart))
      XCTAssertGreaterThan(apart, 0)
    }
  }

  func testLocalBatchNormDiffersFromSynchronized() throws {
    let one = try dump(ranks: 1, batch: 12)
    let local = try dump(ranks: 2, batch: 12, bn: "local")
    let (loss, weights) = try difference(one, local)
    print(String(format: "local BN on 2 ranks vs 1 process: loss %.2e, weights %.2e", loss, weights))
    XCTAssertGreaterThan(weights, 1e-3, "per-rank statistics must change the result")
  }

  func testDifferentReplicaIsCaughtAtStartUp() throws {
    let result = try Harness.mpi(2, training + ["--batch", "8", "--debug-perturb-rank", "1"])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.output.contains("replica check failed"), result.output)
    XCTAssertTrue(result.output.contains("rank(s) 1"), result.output)
  }

  func testRanksWithDifferentOptionsAreRefused() throws {
    guard let mpirun = Harness.mpirun else { throw XCTSkip("mpirun is not installed") }
    let result = try Harness.run(mpirun, ["-np", "1", Harness.binary] + training + ["--batch", "8", ":", "-np", "1", Harness.binary] + training + ["--batch", "10"])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.output.contains("different options"), result.output)
  }

  func testBatchSmallerThanRanksIsRefused() throws {
    let result = try Harness.mpi(3, training + ["--batch", "2"])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.output.contains("--batch 2 is smaller than the 3 ranks"), result.output)
  }

  func testAHungRankStopsTheJobWithinTheTimeout() throws {
    let result = try Harness.mpi(2, training + ["--batch", "8", "--debug-stall-rank", "1", "--comm-timeout", "3"], limit: 120)
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.output.contains("made no progress"), result.output)
    // A job that does not stop runs into the 120 s limit; 60 s is the timeout plus mpirun's
    // start and teardown (a few seconds) many times over.
    XCTAssertLessThan(result.seconds, 60, "the job must stop soon after the 3 s timeout")
  }

  func testADeadRankStopsTheJob() throws {
    let result = try Harness.mpi(2, training + ["--batch", "8", "--debug-exit-rank", "1", "--comm-timeout", "10"], limit: 120)
    XCTAssertNotEqual(result.status, 0)
    // As above: the 10 s timeout plus start and teardown, well inside the 120 s limit.
    XCTAssertLessThan(result.seconds, 60, "the job must stop soon after the 10 s timeout: \(result.output.suffix(3000))")
  }
}

// The typed choices of the command line that the library owns: `--precision` (what a user asks
// for, and what this CPU and this build can give) and `--bn`. bf16 needs bfloat16 kernels tested
// on a CPU that has them; until fairtune has such kernels, bf16 runs fp32 and says so, and
// bf16-emulated gives bfloat16's numerics on any CPU (slower than fp32).
import Tensors

public enum PrecisionRequest: String, CaseIterable, Sendable {
  case fp32
  case bf16
  case bf16Emulated = "bf16-emulated"

  /// The precision a run gets, and a line for the user when it is not what was asked or costs speed.
  public var resolved: (precision: Precision, notice: String?) {
    switch self {
    case .fp32:
      return (.fp32, nil)
    case .bf16:
      let why = CPU.hasAVX512BF16
        ? "\(CPU.model) has AVX512_BF16, but fairtune has no bfloat16 kernel tested on such a CPU yet"
        : "\(CPU.model) has no AVX512_BF16 (bfloat16 dot products)"
      return (.fp32, "--precision bf16: \(why), so this run is fp32; --precision bf16-emulated gives bfloat16's numerics on any CPU, slower than fp32.")
    case .bf16Emulated:
      return (.bf16Emulated, "--precision bf16-emulated: convolutions and linear layers multiply bfloat16-rounded operands with fp32 sums (BatchNorm, losses, the optimizer and the weights stay fp32); bfloat16's numerics, slower than fp32.")
    }
  }

  public var precision: Precision { resolved.precision }
}

/// `--bn`: how BatchNorm's batch statistics are taken when a run has several ranks.
public enum BatchNormMode: String, CaseIterable, Sendable {
  /// Over every rank of the group (synchronized BatchNorm).
  case sync
  /// Per rank, as plain DDP does.
  case local
}

/// `--collectives`: the order in which a step's collectives use the link.
public enum CollectiveSchedule: String, CaseIterable, Sendable {
  /// BatchNorm's sums on a communicator of their own, never queued behind gradient bytes: the
  /// gradient buckets go in chunks with a bounded amount in flight, started as earlier chunks
  /// complete (the default).
  case priority
  /// Every collective on one communicator, each gradient bucket one all-reduce started when it
  /// fills (PyTorch DDP's order): a BatchNorm sum waits behind the buckets already on the link.
  case fifo
}

/// `--gradient-wire`: the number format of the gradients on the link.
public enum GradientWire: String, CaseIterable, Sendable {
  /// fp32: exact (the default).
  case fp32
  /// bfloat16: half the bytes; each hop adds in fp32 and rounds the sum to bfloat16, and the
  /// result comes back as fp32 (8 bits of mantissa: a relative error of at most 2^-9 a rounding).
  case bf16
}

/// How a fine-tuning run's head is fit.
public enum HeadFit: String, CaseIterable, Sendable {
  /// By the run's optimizer, step by step, as every other parameter (the paper's protocol: the
  /// same random search over optimizer, rate, schedule, weight decay and epochs for every strategy).
  case trained
  /// Solved to convergence by L-BFGS on the feature table (40 logistic regressions with L2 weight
  /// decay): for a backbone that computes a fixed function, what the head can be at best.
  case converged
}

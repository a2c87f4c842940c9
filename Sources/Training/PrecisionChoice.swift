// `--precision`: what a user asks for, and what this CPU and this build can give. bf16 needs
// bfloat16 kernels tested on a CPU that has them; until fairtune has such kernels, bf16 runs fp32
// and says so, and bf16-emulated gives bfloat16's numerics on any CPU (slower than fp32).
import Tensors

public enum PrecisionChoice {
  /// The names `--precision` takes.
  public static let names = "fp32, bf16 or bf16-emulated"

  /// The precision a run gets for `name`, and a line for the user when it is not what the name
  /// says or costs speed; nil for a name that is not a precision.
  public static func resolve(_ name: String) -> (precision: Precision, notice: String?)? {
    switch name {
    case "fp32":
      return (.fp32, nil)
    case "bf16":
      let why = CPU.hasAVX512BF16
        ? "\(CPU.model) has AVX512_BF16, but fairtune has no bfloat16 kernel tested on such a CPU yet"
        : "\(CPU.model) has no AVX512_BF16 (bfloat16 dot products)"
      return (.fp32, "--precision bf16: \(why), so this run is fp32; --precision bf16-emulated gives bfloat16's numerics on any CPU, slower than fp32.")
    case Precision.bf16Emulated.rawValue:
      return (.bf16Emulated, "--precision bf16-emulated: convolutions and linear layers multiply bfloat16-rounded operands with fp32 sums (BatchNorm, losses, the optimizer and the weights stay fp32); bfloat16's numerics, slower than fp32.")
    default:
      return nil
    }
  }
}

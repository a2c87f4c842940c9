"""Writes the fixtures of the import/export test: a torchvision-layout ResNet-18 (4 base channels)
as safetensors with torchvision's names (torchvision-resnet18.safetensors), and a fixed input with
the logits torchvision computes in eval mode (torchvision-resnet18-io.safetensors). Run once."""
import os
import sys

import torch
from safetensors.torch import save_file
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(__file__))
from make_reference import ScaledResNet  # noqa: E402


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "Tests/TrainingTests/Fixtures"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = ScaledResNet(BasicBlock, [2, 2, 2, 2], 4, 40, small_stem=False)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(0.1 * torch.randn_like(buffer))
            elif name.endswith("running_var"):
                buffer.copy_(0.5 + torch.rand_like(buffer))
            elif name.endswith("num_batches_tracked"):
                buffer.fill_(17)
        for name, p in model.named_parameters():
            if "bn" in name or "downsample.1" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
    model.eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(out_dir, "torchvision-resnet18.safetensors"), metadata={"format": "pt"})
    save_file({"input": images, "logits": logits}, os.path.join(out_dir, "torchvision-resnet18-io.safetensors"))
    for f in ("torchvision-resnet18.safetensors", "torchvision-resnet18-io.safetensors"):
        print(f, os.path.getsize(os.path.join(out_dir, f)), "bytes")


if __name__ == "__main__":
    main()

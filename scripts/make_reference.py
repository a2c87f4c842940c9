"""Writes the PyTorch reference fixtures that the Swift tests compare with (run once; the tests
never need PyTorch). Usage: python scripts/make_reference.py [OUT_DIR]

Each fixture is a safetensors file holding, for one torchvision ResNet (channels scaled down)
in one mode: the input's shape (NCHW), the logits, the BCE loss, the gradient of every
parameter ("grad.<name>"), and the running statistics after the step ("after.<name>").

Weights, input and targets are not stored: both sides compute them from `pattern`, an integer hash of the
tensor name and element index, so the fixtures stay small. "weights_checksum" lets the Swift
side confirm it generated the same weights."""
import os
import sys

import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet


class ScaledResNet(ResNet):
    """torchvision's ResNet with `base` channels in place of 64 and an optional small stem."""

    def __init__(self, block, layers, base, num_classes, small_stem):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = base
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        if small_stem:
            self.conv1 = nn.Conv2d(3, base, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(base * 8 * block.expansion, num_classes)


def fnv1a(name):
    h = 0x811C9DC5
    for byte in name.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def pattern(name, count):
    """Uniform values in [-0.5, 0.5): murmur3's 32-bit finaliser of (i * 2654435761 +
    fnv1a(name)) mod 2^32, over 2^32, minus 0.5, in float64 (the Swift test does the same).
    The finaliser matters: the bare multiplicative hash is a lattice whose correlated weights
    make ResNet-50's BatchNorm ill-conditioned."""
    mask = 0xFFFFFFFF
    h = (torch.arange(count, dtype=torch.int64) * 2654435761 + fnv1a(name)) & mask
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & mask
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & mask
    h = h ^ (h >> 16)
    return h.to(torch.float64) / float(1 << 32) - 0.5


def fill(model):
    state = model.state_dict()
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            tensor.fill_(3)
            continue
        u = pattern(name, tensor.numel())
        if name.endswith("running_var"):
            values = 1.0 + u  # in [0.5, 1.5)
        elif name.endswith("running_mean") or ("bn" in name or "downsample.1" in name) and name.endswith("bias"):
            values = 0.4 * u
        elif name.endswith("bn3.weight"):
            # A small gain on the last BatchNorm of each bottleneck branch (the idea behind
            # torchvision's zero_init_residual) keeps 4-channel ResNet-50 well-conditioned:
            # with gain 1, float32 PyTorch itself is 3e-4 away from float64.
            values = 0.25 + 0.1 * u
        elif ("bn" in name or "downsample.1" in name) and name.endswith("weight"):
            values = 1.0 + 0.4 * u
        elif name == "fc.bias":
            values = 0.2 * u
        else:
            fan_in = tensor[0].numel()
            values = u * 2.0 * (6.0 / fan_in) ** 0.5  # uniform with variance 2 / fan_in
        tensor.copy_(values.to(torch.float32).reshape(tensor.shape))
    return sum(float(v.double().sum()) for k, v in state.items() if not k.endswith("num_batches_tracked"))


def reference(name, block, layers, base, small_stem, train, batch, size):
    model = ScaledResNet(block, layers, base, 40, small_stem)
    checksum = fill(model)
    # The reference runs in float64 from the float32 weights: with 4 images, the BatchNorm of a
    # 1x1 feature map is ill-conditioned enough that float32 PyTorch itself is off by 1e-3.
    model = model.double()
    images = pattern("input", batch * 3 * size * size).to(torch.float32).double().reshape(batch, 3, size, size) * 4.0
    targets = (pattern("targets", batch * 40) > 0.1).double().reshape(batch, 40)
    model.train(train)
    logits = model(images)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
    loss.backward()
    out = {
        "input_shape": torch.tensor(list(images.shape), dtype=torch.int64),
        "input_checksum": images.sum().reshape([]),
        "logits": logits.detach(),
        "loss": loss.detach().reshape([]),
        "weights_checksum": torch.tensor(checksum, dtype=torch.float64),
    }
    for pname, p in model.named_parameters():
        out["grad." + pname] = p.grad.detach().clone()
    for bname, b in model.named_buffers():
        if not bname.endswith("num_batches_tracked"):
            out["after." + bname] = b.detach().clone()
    meta = {
        "model": name, "base": str(base), "stem": "small" if small_stem else "imagenet",
        "mode": "train" if train else "eval", "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    exact = ("weights_checksum", "input_checksum", "input_shape")
    return {k: (v if k in exact else v.float()).contiguous() for k, v in out.items()}, meta


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "Tests/NNTests/Fixtures"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    cases = [
        ("resnet18", BasicBlock, [2, 2, 2, 2], 4, False),
        ("resnet50", Bottleneck, [3, 4, 6, 3], 4, False),
        ("resnet18-small", BasicBlock, [2, 2, 2, 2], 4, True),
    ]
    for name, block, layers, base, small in cases:
        modes = [True, False] if not small else [True]
        # 64 px keeps 2x2 maps in layer4: BatchNorm over 1x1 maps of 4 images is so
        # ill-conditioned that float32 and float64 PyTorch disagree by 1e-3.
        size = 64 if not small else 16
        for train in modes:
            tensors, meta = reference(name, block, layers, base, small, train, batch=4, size=size)
            path = os.path.join(out_dir, f"{name}-{'train' if train else 'eval'}.safetensors")
            save_file(tensors, path, metadata=meta)
            print(path, os.path.getsize(path), "bytes, loss", float(tensors["loss"]))


if __name__ == "__main__":
    main()

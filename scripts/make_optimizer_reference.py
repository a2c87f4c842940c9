"""Writes Tests/NNTests/Fixtures/optimizers.safetensors: parameter values after each of 4 steps of
torch.optim.SGD (plain, momentum, Nesterov), Adam, AdamW, and of LARS written as in SimCLR's
reference code (torch has none), from fixed initial values and gradients; and the learning rates of
torch's MultiStepLR, CosineAnnealingLR and OneCycleLR. Run once; the tests never need PyTorch."""
import os
import sys

import torch
from safetensors.torch import save_file

# Names and kinds as the Swift registry gives them: a convolution weight, a BatchNorm weight
# (LARS: excluded) and a linear bias (LARS: excluded).
SHAPES = {"layer1.0.conv1.weight": (4, 3), "bn1.weight": (4,), "fc.bias": (4,)}
STEPS = 4


def lars_step(params, grads, buffers, lr, momentum, weight_decay, eta):
    for name, p in params.items():
        g = grads[name].clone()
        excluded = name.startswith("bn") or name.endswith(".bias")
        rate = lr
        if not excluded:
            g = g + weight_decay * p
            w_norm, g_norm = p.norm(), g.norm()
            if w_norm > 0 and g_norm > 0:
                rate = lr * eta * w_norm / g_norm
        buffers[name] = momentum * buffers[name] + rate * g
        p -= buffers[name]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/NNTests/Fixtures/optimizers.safetensors"
    g = torch.Generator().manual_seed(0)
    init = {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}
    grads = [{n: torch.randn(s, generator=g) for n, s in SHAPES.items()} for _ in range(STEPS)]
    tensors = {}
    for n in SHAPES:
        tensors[f"init.{n}"] = init[n]
        for s in range(STEPS):
            tensors[f"grad.{s}.{n}"] = grads[s][n]

    configs = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.0, weight_decay=1e-2),
        "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2),
        "sgd-nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
        "adam": lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-1),
    }
    for key, make in configs.items():
        params = {n: init[n].clone().requires_grad_(True) for n in SHAPES}
        opt = make(list(params.values()))
        for s in range(STEPS):
            for n, p in params.items():
                p.grad = grads[s][n].clone()
            opt.step()
            for n, p in params.items():
                tensors[f"{key}.{s}.{n}"] = p.detach().clone()

    params = {n: init[n].clone() for n in SHAPES}
    buffers = {n: torch.zeros(s) for n, s in SHAPES.items()}
    for s in range(STEPS):
        lars_step(params, grads[s], buffers, lr=0.5, momentum=0.9, weight_decay=1e-2, eta=0.001)
        for n, p in params.items():
            tensors[f"lars.{s}.{n}"] = p.clone()

    def rates(make_scheduler, steps):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.4)
        sched = make_scheduler(opt)
        out = []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return torch.tensor(out, dtype=torch.float64)

    tensors["lr.step"] = rates(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[5, 12], gamma=0.1), 20)
    tensors["lr.cosine"] = rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20), 20)
    tensors["lr.onecycle"] = rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.4, total_steps=20), 20)
    save_file({k: v.contiguous() for k, v in tensors.items()}, out, metadata={"torch": torch.__version__})
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()

"""Writes Tests/TrainingTests/Fixtures/ntxent.safetensors: SimCLR's NT-Xent loss and its gradient
computed by PyTorch autograd for fixed embeddings (8 rows: 4 images x 2 views, rows i and i+4 are
positives) at temperatures 0.1 and 0.5. Run once; the tests never need PyTorch."""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file


def nt_xent(z, temperature):
    n = z.shape[0]
    u = F.normalize(z, dim=1)
    sim = u @ u.t() / temperature
    sim = sim.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    positives = (torch.arange(n) + n // 2) % n
    return F.cross_entropy(sim, positives)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/TrainingTests/Fixtures/ntxent.safetensors"
    torch.manual_seed(0)
    z0 = torch.randn(8, 6, dtype=torch.float64)
    tensors = {"z": z0.float()}
    for t in (0.1, 0.5):
        z = z0.clone().requires_grad_(True)
        loss = nt_xent(z, t)
        loss.backward()
        tensors[f"loss.{t}"] = loss.detach().reshape(1).float()
        tensors[f"grad.{t}"] = z.grad.float()
    save_file(tensors, out)
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()

"""PyTorch's CPU training step (forward, 40-way BCE, backward, SGD) on random data: the baseline
that `fairtune bench` is compared with. Prints one JSON line, like `fairtune bench --json`.
--autocast-bf16 runs forward and loss under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's
mixed precision on CPUs (convolutions and linear layers in bfloat16, the rest fp32)."""
import contextlib
import argparse
import json
import statistics
import time

import torch
import torchvision


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--autocast-bf16", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(num_classes=40)
    images = torch.randn(args.batch, 3, args.image_size, args.image_size)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.to(memory_format=torch.channels_last)
    targets = (torch.rand(args.batch, 40) < 0.3).float()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=False)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.autocast_bf16 else contextlib.nullcontext()
        with autocast:
            loss = loss_fn(model(images).float(), targets)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({
        "model": args.model, "image_size": args.image_size, "batch": args.batch,
        "threads": args.threads, "channels_last": args.channels_last, "autocast_bf16": args.autocast_bf16,
        "step_seconds": median, "images_per_second": args.batch / median,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()

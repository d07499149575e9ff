"""Training throughput: a straightforward PyTorch port of Basset vs the project's trainer.

Both train the paper architecture (pretrained params, unpadded, 600 bp, 164 targets) on the same
random data, batch 128 and 1024, in this process. The baseline is what a first port looks like:
fp32, float one-hot on the host copied per batch, the Kipoi layout (Conv2d with (k, 1) kernels on
(N, 4, L, 1)), `.item()` every step. The project's path is `basset.train` (codes on
the device, one-hot per batch there, loss summed on the device, foreach optimiser; on CUDA bf16
autocast and the step replayed from a CUDA graph, torch.compile with --compile).

    python benchmarks/train_throughput.py                  # CPU, a few batches per size
    python benchmarks/train_throughput.py --device cuda --batches 50
    python benchmarks/train_throughput.py --device cuda --batches 50 --compile

Prints sequences/s, the ratio and (on CUDA) the fraction of the card's bf16 FLOP limit, counting
0.953 GFLOP per sequence per training step.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from basset import ResidentData, TrainOptions, pretrained_params, train
from basset.data import BassetData, Split, codes_to_onehot

SEQ_LEN, TARGETS = 600, 164
GFLOP_PER_SEQ = 0.953
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16, SXM parts


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


def kipoi_basset() -> nn.Sequential:
    """The published graph in the Kipoi conversion's layout."""
    layers: list[nn.Module] = []
    for cin, cout, k, pool in ((4, 300, 19, 3), (300, 200, 11, 4), (200, 200, 7, 4)):
        layers += [nn.Conv2d(cin, cout, (k, 1)), nn.BatchNorm2d(cout), nn.ReLU(),
                   nn.MaxPool2d((pool, 1), (pool, 1), ceil_mode=True)]
    layers.append(_Flatten())
    for cin, cout in ((2000, 1000), (1000, 1000)):
        layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU(), nn.Dropout(0.3)]
    layers.append(nn.Linear(1000, TARGETS))
    return nn.Sequential(*layers)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def baseline_epoch(codes: np.ndarray, targets: np.ndarray, batch: int,
                   device: torch.device) -> Callable[[], float]:
    """A closure that trains one pass over the data and returns sequences/s."""
    torch.manual_seed(1)
    model = kipoi_basset().to(device).train()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.002, alpha=0.98, eps=1e-8)
    onehot = codes_to_onehot(torch.from_numpy(codes)).unsqueeze(-1).numpy()  # host float32

    def epoch() -> float:
        _sync(device)
        start, total = time.perf_counter(), 0.0
        for b in range(len(codes) // batch):
            x = torch.from_numpy(onehot[b * batch : (b + 1) * batch]).to(device)
            y = torch.from_numpy(targets[b * batch : (b + 1) * batch]).to(device)
            loss = F.binary_cross_entropy_with_logits(model(x), y, reduction="sum")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for w in model.parameters():
                    if w.dim() >= 2:
                        w.copy_(torch.renorm(w, 2, 0, 7.0))
            total += loss.item()
        return len(codes) // batch * batch / (time.perf_counter() - start)

    return epoch


def project_epoch(codes: np.ndarray, targets: np.ndarray, batch: int, device: torch.device,
                  options: TrainOptions) -> Callable[[], float]:
    """The same with basset.train: two epochs per call, the second one's rate (the first pays
    for warm-up, graph capture and compilation); a one-batch validation set."""
    params = pretrained_params()
    params.padding, params.batch_size = "paper", batch
    data = BassetData(train=Split(codes, targets), valid=Split(codes[:batch], targets[:batch]),
                      test=None, target_labels=[f"t{i}" for i in range(TARGETS)])
    resident = ResidentData(data, device)  # copied to the device once, as an HPO worker does
    two_epochs = dataclasses.replace(options, max_epochs=2, stagnant_t=2)

    def epoch() -> float:
        return train(params, data, options=two_epochs, resident=resident).history[-1].seqs_per_sec

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--batches", type=int, default=None,
                        help="timed batches per size (default: 3 on CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up batches per path")
    parser.add_argument("--repeats", type=int, default=2, help="alternating timed passes; best kept")
    parser.add_argument("--no-amp", dest="amp", action="store_false")
    parser.add_argument("--no-graphs", dest="graphs", action="store_false",
                        help="CUDA: eager steps instead of CUDA graph replay")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args()
    device = torch.device(args.device)
    options = TrainOptions(device=str(device), amp=args.amp, cuda_graphs=args.graphs,
                           compile=args.compile, quiet=True)
    batches = args.batches or (50 if device.type == "cuda" else 3)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    print(f"device: {name}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"best of {args.repeats} alternating passes of {batches} batches")
    print(f"{'batch':>6} {'baseline seq/s':>15} {'project seq/s':>14} {'ratio':>6} {'% of peak':>10}")
    rng = np.random.default_rng(0)
    for batch in args.batch_sizes:
        n = batch * batches
        codes = rng.integers(0, 4, size=(n, SEQ_LEN), dtype=np.uint8)
        targets = (rng.random((n, TARGETS)) < 0.2).astype(np.float32)
        runs = {
            "base": baseline_epoch(codes, targets, batch, device),
            "ours": project_epoch(codes, targets, batch, device, options),
        }
        warm = slice(0, batch * args.warmup)
        baseline_epoch(codes[warm], targets[warm], batch, device)()  # allocator, kernel choice
        best = {name: 0.0 for name in runs}
        for _ in range(args.repeats):  # alternate, keep the best: other load on the machine
            for name, epoch in runs.items():
                best[name] = max(best[name], epoch())
        base, ours = best["base"], best["ours"]
        share = f"{100 * ours * GFLOP_PER_SEQ / (peak * 1e3):9.1f}%" if peak else f"{'-':>10}"
        print(f"{batch:>6} {base:>15,.0f} {ours:>14,.0f} {ours / base:>5.2f}x {share}")


if __name__ == "__main__":
    main()

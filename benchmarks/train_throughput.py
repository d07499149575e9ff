"""Training throughput: a straightforward PyTorch port of Basset vs the project's trainer.

Both train the paper architecture (pretrained params, unpadded, 600 bp, 164 targets) on the same
random data, batch 128 and 1024, in this process. The baseline is what a first port looks like:
fp32, float one-hot on the host copied per batch, the Kipoi layout (Conv2d with (k, 1) kernels on
(N, 4, L, 1)), `.item()` every step. The project's path is `basset.train` (codes on the device,
one-hot per batch there, loss summed on the device, foreach optimiser; on CUDA bf16 autocast and
the step replayed from a CUDA graph, torch.compile with --compile); its first epoch is the
warm-up (graph capture, compilation) and the best later epoch counts.

    python benchmarks/train_throughput.py                  # CPU, a few batches per size
    python benchmarks/train_throughput.py --device cuda --batches 50
    python benchmarks/train_throughput.py --device cuda --batches 50 --compile

Prints sequences/s, the ratio and (on a card in BF16_PEAK_TFLOPS) the share of its dense bf16
peak, from the FLOPs of one training step counted by torch. benchmarks/gpu_check.py uses the
same functions.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from basset import BassetData, TrainOptions, train
from basset.data.h5read import Split
from basset.params import pretrained_params
from basset.training.resident import codes_to_onehot

SEQ_LEN, TARGETS = 600, 164
# Dense bf16 tensor-core peaks in TFLOP/s (NVIDIA data sheets); the first name found in the
# card's name wins, so the PCIe/NVL parts come before the SXM ones.
BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
)


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


def bf16_peak_tflops(card: str) -> float | None:
    """The card's dense bf16 peak, or None for a card not in the table (and the CPU)."""
    return next((peak for name, peak in BF16_PEAK_TFLOPS if name in card), None)


def flops_per_seq() -> float:
    """FLOPs of one training step (forward and backward) per sequence, counted by torch on the
    meta device (no data, no compute): convolutions and matrix products."""
    batch = 8
    model = kipoi_basset().to("meta")
    x = torch.empty(batch, 4, SEQ_LEN, 1, device="meta")
    y = torch.empty(batch, TARGETS, device="meta")
    with FlopCounterMode(display=False) as counter:
        F.binary_cross_entropy_with_logits(model(x), y, reduction="sum").backward()
    return counter.get_total_flops() / batch


def random_data(n: int, seq_len: int = SEQ_LEN, targets: int = TARGETS,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random sequences (uint8 codes) and binary targets, about 20% positive."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, seq_len), dtype=np.uint8)
    return codes, (rng.random((n, targets)) < 0.2).astype(np.float32)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def port_throughput(codes: np.ndarray, targets: np.ndarray, batch: int, device: torch.device,
                    repeats: int, warmup: int = 1) -> float:
    """The straightforward port: the best of `repeats` passes over the data (sequences/s), after
    `warmup` batches (allocator, kernel choice)."""
    torch.manual_seed(1)
    model = kipoi_basset().to(device).train()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.002, alpha=0.98, eps=1e-8)
    onehot = codes_to_onehot(torch.from_numpy(codes)).unsqueeze(-1).numpy()  # host float32

    def run(batches: int) -> float:
        _sync(device)
        start, total = time.perf_counter(), 0.0
        for b in range(batches):
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
        return batches * batch / (time.perf_counter() - start)

    run(warmup)
    return max(run(len(codes) // batch) for _ in range(repeats))


def project_throughput(codes: np.ndarray, targets: np.ndarray, batch: int,
                       options: TrainOptions, repeats: int) -> float:
    """`basset.train` on the paper architecture: the best of `repeats` epochs (sequences/s)
    after a first, warm-up epoch. Validation is one batch (not timed: seqs_per_sec counts the
    training pass only) with both classes in every target."""
    params = pretrained_params()
    params.padding, params.batch_size = "paper", batch
    valid_targets = targets[:batch].copy()
    valid_targets[:2] = [[1.0], [0.0]]
    data = BassetData(train=Split(codes, targets), valid=Split(codes[:batch], valid_targets),
                      test=None, target_labels=[f"t{i}" for i in range(TARGETS)])
    epochs = 1 + repeats
    result = train(params, data, options=dataclasses.replace(
        options, max_epochs=epochs, stagnant_t=epochs, quiet=True))
    return max(m.seqs_per_sec for m in result.history[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--batches", type=int, default=None,
                        help="batches per timed pass (default: 3 on CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up batches of the port")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per path; best kept")
    parser.add_argument("--no-amp", dest="amp", action="store_false")
    parser.add_argument("--no-graphs", dest="graphs", action="store_false",
                        help="CUDA: eager steps instead of CUDA graph replay")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args()
    device = torch.device(args.device)
    options = TrainOptions(device=str(device), amp=args.amp, cuda_graphs=args.graphs,
                           compile=args.compile)
    batches = args.batches or (50 if device.type == "cuda" else 3)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak, flops = bf16_peak_tflops(name), flops_per_seq()
    print(f"device: {name}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"best of {args.repeats} passes of {batches} batches, "
          f"{flops / 1e9:.3f} GFLOP per sequence per step")
    print(
        f"{'batch':>6} {'baseline seq/s':>15} {'project seq/s':>14} {'ratio':>6} {'% of peak':>10}"
    )
    for batch in args.batch_sizes:
        codes, targets = random_data(batch * batches)
        base = port_throughput(codes, targets, batch, device, args.repeats, args.warmup)
        ours = project_throughput(codes, targets, batch, options, args.repeats)
        share = f"{100 * ours * flops / (peak * 1e12):9.1f}%" if peak else f"{'-':>10}"
        print(f"{batch:>6} {base:>15,.0f} {ours:>14,.0f} {ours / base:>5.2f}x {share}")


if __name__ == "__main__":
    main()

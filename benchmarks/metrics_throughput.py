"""Evaluation metrics: per-target AUROC/AUPRC vectorised over targets against the per-target
scikit-learn loop the trainer used before (issue 26 item 4), measured in this process.

    python benchmarks/metrics_throughput.py                      # 70,000 x 164 and x 733, CPU
    python benchmarks/metrics_throughput.py --device cuda        # the vectorised side on a GPU

Validation-shaped data: targets with rates of 1-40%, predictions that follow them as float32
probabilities, a share of them saturated (ties, as a trained network's outputs have). Prints
seconds per evaluation for both, their ratio and the largest difference between their numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from basset import ArgParser
from basset.training.metrics import binary_metrics

Metrics = tuple[np.ndarray, np.ndarray]


def validation_like(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 targets, float32 probabilities) of a validation split's shape."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.01, 0.4, cols)
    targets = (rng.random((rows, cols)) < rate).astype(np.uint8)
    logits = rng.normal(size=(rows, cols)) + targets * rng.uniform(0.5, 3.0, cols)
    preds = 1 / (1 + np.exp(-2 * logits))
    preds[rng.random((rows, cols)) < 0.05] = 1.0  # saturated outputs tie
    return targets, preds.astype(np.float32)


def sklearn_loop(targets: np.ndarray, preds: np.ndarray) -> Metrics:
    """The trainer's metric code before issue 26: one scikit-learn call per target and metric."""
    auroc, auprc = np.full(targets.shape[1], np.nan), np.full(targets.shape[1], np.nan)
    for t in range(targets.shape[1]):
        if 0 < targets[:, t].sum() < len(targets):
            auroc[t] = roc_auc_score(targets[:, t], preds[:, t])
            auprc[t] = average_precision_score(targets[:, t], preds[:, t])
    return auroc, auprc


def best_seconds(run: Callable[[], Metrics], repeats: int) -> tuple[float, Metrics]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def compare(rows: int, cols: int, device: str, repeats: int) -> dict[str, float]:
    """Seconds of both, their ratio and the largest absolute difference of their numbers."""
    targets, preds = validation_like(rows, cols)
    loop_s, want = best_seconds(lambda: sklearn_loop(targets, preds), repeats)
    on_device = torch.from_numpy(targets).to(device), torch.from_numpy(preds).to(device)

    def vectorised() -> Metrics:
        result = binary_metrics(*on_device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return result

    vectorised()  # warm-up (CUDA context, kernels)
    fast_s, got = best_seconds(vectorised, repeats)
    diff = max(float(np.nanmax(np.abs(g - w))) for g, w in zip(got, want, strict=True))
    return {"rows": rows, "targets": cols, "sklearn_s": loop_s, "vectorised_s": fast_s,
            "ratio": loop_s / fast_s, "max_abs_diff": diff}


def main() -> None:
    parser = ArgParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=70_000, help="validation sequences")
    parser.add_argument("--targets", type=int, nargs="+", default=[164, 733])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a worker's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_cli(None)
    torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch {torch.__version__}, {args.threads} thread(s)")
    print("| rows | targets | sklearn loop s | vectorised s | ratio | max abs diff |")
    print("|---:|---:|---:|---:|---:|---:|")
    for cols in args.targets:
        r = compare(args.rows, cols, args.device, args.repeats)
        print(f"| {r['rows']:,} | {r['targets']} | {r['sklearn_s']:.2f} | "
              f"{r['vectorised_s']:.3f} | {r['ratio']:.1f}x | {r['max_abs_diff']:.1e} |")


if __name__ == "__main__":
    main()

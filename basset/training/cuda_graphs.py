"""CUDA-only speed-ups of the training step: the whole step replayed from a CUDA graph.

Small batches on a GPU are bound by kernel launches (issue 7: ~28k sequences/s at batch 128 on
an H100 however fast the kernels). `GraphedSteps` captures one complete step (batch gather from
the resident data, one-hot, forward, loss, backward, optimiser, max-norm) once and replays it per
batch, copying only the batch's indices into a static buffer. The CPU never comes here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

WARMUP_STEPS = 3  # eager steps (real ones) before the first capture: lazy inits, optimiser state

Step = Callable[[torch.Tensor, bool], torch.Tensor]  # (batch indices, reverse-complement) -> loss


def set_capturable(optimizer: torch.optim.Optimizer, capturable: bool) -> None:
    """Switch the optimiser between graph-capturable (step counters on the device) and plain
    (counters on the host); a checkpoint restored on another device needs the latter."""
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state:
                device = p.device if capturable else torch.device("cpu")
                state["step"] = state["step"].to(device=device, dtype=torch.float32)


class GraphedSteps:
    """Replays `step` from a CUDA graph captured once per (reverse-complement, learning rate): the
    rate is baked into a captured optimiser step. Each new key first runs WARMUP_STEPS real steps
    eagerly on a side stream (lazy initialisation, optimiser state, torch.compile's compilation
    for that input). If a capture fails, logs why and stays eager."""

    def __init__(self, step: Step, optimizer: torch.optim.Optimizer, batch: int,
                 device: torch.device) -> None:
        self.step, self.optimizer = step, optimizer
        self.index = torch.zeros(batch, dtype=torch.long, device=device)
        self.graphs: dict[tuple[bool, float], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.warm: dict[tuple[bool, float], int] = {}
        self.failed = False
        set_capturable(optimizer, True)

    def __call__(self, index: torch.Tensor, rc: bool) -> torch.Tensor:
        if self.failed:
            return self.step(index, rc)
        key = (rc, float(self.optimizer.param_groups[0]["lr"]))
        if self.warm.get(key, 0) < WARMUP_STEPS:
            self.warm[key] = self.warm.get(key, 0) + 1
            return self._eager_on_side_stream(index, rc)
        if key not in self.graphs:
            self.graphs = {k: v for k, v in self.graphs.items() if k[1] == key[1]}
            captured = self._capture(rc)
            if captured is None:
                return self.step(index, rc)
            self.graphs[key] = captured
        graph, loss = self.graphs[key]
        self.index.copy_(index)
        graph.replay()
        return loss

    def _eager_on_side_stream(self, index: torch.Tensor, rc: bool) -> torch.Tensor:
        main = torch.cuda.current_stream()
        side = torch.cuda.Stream()
        side.wait_stream(main)
        with torch.cuda.stream(side):
            loss = self.step(index, rc)
        main.wait_stream(side)
        loss.record_stream(main)  # read there after this returns
        return loss

    def _capture(self, rc: bool) -> tuple[torch.cuda.CUDAGraph, torch.Tensor] | None:
        # Gradients must be allocated inside the capture (from the graph's memory pool).
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                loss = self.step(self.index, rc)
        except (RuntimeError, AssertionError) as err:  # the optimiser asserts capturability
            log.warning("CUDA graph capture failed, training without graphs: %s", err)
            self.failed = True
            self.optimizer.zero_grad(set_to_none=True)
            return None
        return graph, loss

"""The training batches, epoch after epoch, as one stream that evaluations may cut anywhere.

Each epoch (a pass over the training set in whole batches; the last partial batch is left out,
as always) is a fresh shuffle drawn from the run's generator when its first batch is asked for.
The generator's state at that draw is kept, so a run restarted mid-epoch draws the same order
again and goes on with exactly the batches the uninterrupted run would have trained.
"""

from __future__ import annotations

from typing import Any

import torch

from basset.errors import DataError


class BatchStream:
    """Batch indices over `n` training sequences, `batch` at a time, from step `steps` on."""

    def __init__(self, n: int, batch: int, generator: torch.Generator, *, legacy_order: bool,
                 device: torch.device, steps: int = 0, rng: dict[str, Any] | None = None) -> None:
        self.n, self.batch, self.generator, self.device = n, batch, generator, device
        self.legacy_order = legacy_order
        self.per_epoch = n // batch
        self.steps = steps
        self.shuffle_state: torch.Tensor | None = None  # the generator when this epoch was drawn
        self.order: torch.Tensor | None = None
        if self.position:  # a restart mid-epoch: the same order again
            saved = (rng or {}).get("pass")
            if saved is None and not legacy_order:
                raise DataError("the checkpoint stopped mid-epoch but holds no shuffle state")
            self._draw(None if saved is None else saved.cpu())

    @property
    def epoch(self) -> int:
        """The epoch (1-based) the next batch belongs to."""
        return self.steps // self.per_epoch + 1

    @property
    def position(self) -> int:
        """Batches of the current epoch done."""
        return self.steps % self.per_epoch

    @property
    def sequences(self) -> int:
        """Training sequences seen so far."""
        return self.steps * self.batch

    def mid_epoch_state(self) -> torch.Tensor | None:
        """What a checkpoint needs to resume this epoch's order (None at an epoch's end)."""
        return self.shuffle_state if self.position else None

    def next(self) -> tuple[torch.Tensor, int]:
        """The next batch's indices and the epoch it belongs to."""
        if self.position == 0 or self.order is None:
            self._draw()
        assert self.order is not None
        start = self.position * self.batch
        epoch = self.epoch
        self.steps += 1
        return self.order[start:start + self.batch], epoch

    def _draw(self, saved: torch.Tensor | None = None) -> None:
        """This epoch's order: from the run's generator (a new epoch) or from a saved state."""
        if self.legacy_order:
            order = torch.arange(self.n)
        else:
            generator = self.generator
            if saved is not None:
                generator = torch.Generator()
                generator.set_state(saved)
            self.shuffle_state = generator.get_state()
            order = torch.randperm(self.n, generator=generator)
        self.order = order.to(self.device)

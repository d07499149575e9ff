"""The loss, the coef_l2 / coef_l1 penalty and the optimiser Basset trains with
(docs/basset-semantics.md §2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from basset.params import JobParams


def make_optimizer(
    params: JobParams, parameters: list[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """RMSprop with alpha = momentum (Basset's meaning) or Adam(beta1, beta2).

    foreach: one multi-tensor kernel per operation instead of a Python loop over the tensors
    (torch picks it by itself only on CUDA). Fused kernels are left out: RMSprop has none, and
    device-specific optimiser flags would travel in checkpoints to other devices.
    """
    if params.optimization == "adam":
        return torch.optim.Adam(
            parameters, lr=params.learning_rate, betas=(params.beta1, params.beta2), eps=1e-8,
            foreach=True,
        )
    return torch.optim.RMSprop(
        parameters, lr=params.learning_rate, alpha=params.momentum, eps=1e-8, foreach=True
    )


def preload_optimizers() -> None:
    """Import now what torch imports lazily at the first optimiser a process builds (its
    compiler front end, about a second of CPU): processes forked from this one then start their
    first run without it (the HPO service's workers on the CPU)."""
    weight = torch.nn.Parameter(torch.zeros(1))
    make_optimizer(JobParams(), [weight])


def summed_loss(logits: torch.Tensor, targets: torch.Tensor, target_type: str) -> torch.Tensor:
    """Summed over batch and targets, as Basset (sizeAverage = false)."""
    if target_type == "binary":
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    outputs = torch.relu(logits) if target_type == "positive" else logits
    return F.mse_loss(outputs, targets, reduction="sum")


def output_loss(outputs: torch.Tensor, targets: torch.Tensor, target_type: str) -> torch.Tensor:
    """The same loss from activated (possibly strand-averaged) outputs."""
    if target_type == "binary":
        return F.binary_cross_entropy(outputs, targets, reduction="sum")
    return F.mse_loss(outputs, targets, reduction="sum")


def weight_penalty(model: torch.nn.Module, params: JobParams) -> torch.Tensor | None:
    """coef_l2 / coef_l1 on every parameter (Basset added them to loss and gradient)."""
    if not params.coef_l2 and not params.coef_l1:
        return None
    trained = [p for p in model.parameters() if p.requires_grad]
    total = torch.zeros((), device=trained[0].device)
    if params.coef_l2:
        total = total + 0.5 * params.coef_l2 * sum(p.pow(2).sum() for p in trained)
    if params.coef_l1:
        total = total + params.coef_l1 * sum(p.abs().sum() for p in trained)
    return total

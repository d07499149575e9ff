"""The Basset network from a JobParams: conv blocks, hidden blocks, output layer (logits).

Two graphs (docs/basset-semantics.md §1): "paper" convolutions are unpadded, the graph of the
published model (600 bp -> flatten 2000 with the pretrained params); "same" convolutions keep the
length, Basset HEAD's graph (600 bp -> flatten 2600). Even kernel widths are padded one more on the
right so the length really is kept (Basset HEAD lost a position: its issue #30).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from basset.device import human_bytes
from basset.errors import ArchitectureError
from basset.nn.softpool import SoftPool1d
from basset.params import JobParams


def conv_lengths(params: JobParams, seq_len: int) -> list[tuple[int, int]]:
    """(length after the convolution, length after the pooling) for every conv layer.

    The one length computation used both to check an architecture and to size the model.
    """
    lengths = []
    length = seq_len
    for size, pool in zip(params.conv_filter_sizes, params.pool_width, strict=True):
        if params.padding == "paper":
            length = length - size + 1
        after_conv = length
        # MaxPool1d(ceil_mode=True) with stride = width keeps ceil(L / width) positions.
        length = math.ceil(length / pool) if length > 0 else length
        lengths.append((after_conv, length))
    return lengths


def check_architecture(params: JobParams, seq_len: int) -> int:
    """Refuse a graph whose sequence length reaches <= 0, naming the layer; return the flatten
    size."""
    if seq_len <= 0:
        raise ArchitectureError(f"sequence length must be > 0, got {seq_len}")
    for index, (after_conv, _after_pool) in enumerate(conv_lengths(params, seq_len), start=1):
        if after_conv <= 0:
            raise ArchitectureError(
                f"conv layer {index} (filter size {params.conv_filter_sizes[index - 1]}, "
                f"padding {params.padding}) shrinks the {seq_len} bp input to {after_conv} "
                "positions"
            )
    return params.conv_filters[-1] * conv_lengths(params, seq_len)[-1][1]


SAFETY = 1.5  # allocator fragmentation, temporaries of the backward pass


def parameter_count(params: JobParams, seq_len: int, num_targets: int) -> int:
    """Trained values of the network (weights, biases, batch-norm scales and shifts)."""
    return _sizes(params, seq_len, num_targets)[0]


def training_bytes(params: JobParams, seq_len: int, num_targets: int) -> int:
    """Rough peak memory of one training step of `params` (fp32 counted, bf16 halves some):
    weights, gradients and two optimiser states, plus the batch's saved activations."""
    weights, activations = _sizes(params, seq_len, num_targets)
    return int(SAFETY * (4 * 4 * weights + activations))


def _sizes(params: JobParams, seq_len: int, num_targets: int) -> tuple[int, int]:
    """(parameter count, activation bytes of one batch) in exact integer arithmetic, so that an
    absurd layer size is measured, never allocated."""
    weights = 0
    activations = params.batch_size * 4 * seq_len * 4  # the one-hot batch
    channels = [4, *params.conv_filters]
    lengths = conv_lengths(params, seq_len)
    for i, (after_conv, after_pool) in enumerate(lengths):
        after_conv, after_pool = max(after_conv, 1), max(after_pool, 1)
        weights += channels[i] * channels[i + 1] * params.conv_filter_sizes[i] + 3 * channels[i + 1]
        # conv, batch-norm and ReLU outputs at full length; pool output, its int64 indices and
        # the dropout mask at the pooled length.
        activations += params.batch_size * channels[i + 1] * (3 * 4 * after_conv + 16 * after_pool)
        if params.last_pool == "soft" and i == len(lengths) - 1:
            weights += channels[i + 1]  # its sharpness
            activations += params.batch_size * channels[i + 1] * 4 * after_conv  # its softmax
    units = [channels[-1] * max(lengths[-1][1], 1), *params.hidden_units]
    for i in range(len(params.hidden_units)):
        weights += units[i] * units[i + 1] + 3 * units[i + 1]
        activations += params.batch_size * units[i + 1] * 4 * 4
    weights += units[-1] * num_targets + num_targets
    activations += params.batch_size * num_targets * 4 * 3
    return weights, activations


def check_fits(params: JobParams, seq_len: int, num_targets: int, memory_bytes: int,
               where: str) -> None:
    """Refuse, before anything is allocated, a network whose training needs more than
    `memory_bytes` (the memory of `where`), naming both sizes."""
    needed = training_bytes(params, seq_len, num_targets)
    if needed > memory_bytes:
        raise ArchitectureError(
            f"the network is too large: about {human_bytes(needed)} to train "
            f"({parameter_count(params, seq_len, num_targets):.3g} parameters at batch size "
            f"{params.batch_size}), {where} has {human_bytes(memory_bytes)}"
        )


class RunDropout(nn.Dropout):
    """nn.Dropout whose masks come from the run's own generator when one is set (a CPU run:
    basset.train sets it, so runs in one process do not share the process-wide RNG); without
    one (CUDA) from torch's default generator, as nn.Dropout."""

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or self.generator is None:
            return super().forward(x)
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep / (1 - self.p)


def _conv_block(in_ch: int, out_ch: int, size: int, pool: int, dropout: float, same: bool,
                soft: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    padding = 0
    if same:
        if size % 2:
            padding = size // 2
        else:
            layers.append(nn.ConstantPad1d(((size - 1) // 2, size // 2), 0.0))
    layers += [
        nn.Conv1d(in_ch, out_ch, size, padding=padding),
        nn.BatchNorm1d(out_ch),
        nn.ReLU(inplace=True),
        SoftPool1d(out_ch, pool) if soft else nn.MaxPool1d(pool, ceil_mode=True),
    ]
    if dropout > 0:
        layers.append(RunDropout(dropout))
    return nn.Sequential(*layers)


def _hidden_block(in_units: int, out_units: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Linear(in_units, out_units),
        nn.BatchNorm1d(out_units),
        nn.ReLU(inplace=True),
    ]
    if dropout > 0:
        layers.append(RunDropout(dropout))
    return nn.Sequential(*layers)


class BassetNet(nn.Module):
    """Conv blocks -> flatten -> hidden blocks -> output Linear.

    forward: (N,4,L) -> logits (N,T)."""

    def __init__(self, params: JobParams, seq_len: int, num_targets: int) -> None:
        super().__init__()
        self.flatten_size = check_architecture(params, seq_len)
        self.params = params
        self.seq_len = seq_len
        self.num_targets = num_targets
        same = params.padding == "same"
        channels = [4, *params.conv_filters]
        last = params.num_conv - 1
        soft = params.last_pool == "soft"
        self.conv = nn.Sequential(
            *(
                _conv_block(
                    channels[i], channels[i + 1], size, pool, drop, same, soft and i == last
                )
                for i, (size, pool, drop) in enumerate(
                    zip(
                        params.conv_filter_sizes,
                        params.pool_width,
                        params.conv_dropouts,
                        strict=True,
                    )
                )
            )
        )
        units = [self.flatten_size, *params.hidden_units]
        self.hidden = nn.Sequential(
            *(
                _hidden_block(units[i], units[i + 1], drop)
                for i, drop in enumerate(params.hidden_dropouts)
            )
        )
        self.output = nn.Linear(units[-1], num_targets)

    @property
    def first_conv(self) -> nn.Conv1d:
        return next(m for m in self.conv.modules() if isinstance(m, nn.Conv1d))

    @property
    def target_type(self) -> str:
        return self.params.target_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.hidden(self.conv(x).flatten(1)))

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """Outputs from logits: sigmoid (binary), identity (continuous), relu (positive)."""
        if self.target_type == "binary":
            return torch.sigmoid(logits)
        if self.target_type == "positive":
            return torch.relu(logits)
        return logits


def build_model(params: JobParams, seq_len: int, num_targets: int,
                generator: torch.Generator | None = None) -> BassetNet:
    """The network for `params` on sequences of `seq_len` bp with `num_targets` outputs.

    `generator` (a CPU generator): the initial weights are drawn from it (PyTorch's default
    initialisation of each conv and linear layer), not from the process-wide RNG."""
    if generator is None:
        return BassetNet(params, seq_len, num_targets)
    with torch.device("meta"):  # no draws from the process-wide RNG
        model = BassetNet(params, seq_len, num_targets)
    model.to_empty(device="cpu")
    init_parameters(model, generator)
    return model


def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation of every layer, the random ones (conv and linear:
    Kaiming uniform with a = sqrt(5), bias uniform in +-1/sqrt(fan_in)) drawn from `generator`."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv1d | nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    bound = 1 / math.sqrt(module.weight[0].numel())
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.BatchNorm1d | SoftPool1d):
                module.reset_parameters()


def set_dropout_generator(model: nn.Module, generator: torch.Generator | None) -> None:
    """Draw every dropout mask of `model` from `generator` (None: the process-wide RNG)."""
    for module in model.modules():
        if isinstance(module, RunDropout):
            module.generator = generator


def max_norm_(weights: list[torch.Tensor], max_norm: float) -> None:
    """Rescale each output unit's weights (dim 0 slices) to L2 norm <= max_norm, in place.

    dpnn's maxParamNorm, applied by Basset after every optimiser step.
    """
    with torch.no_grad():
        for w in weights:
            w.renorm_(2, 0, max_norm)


def norm_constrained(model: nn.Module) -> list[torch.Tensor]:
    """The weights maxParamNorm touches: conv and linear weights (dim >= 2) that are trained."""
    return [p for p in model.parameters() if p.dim() >= 2 and p.requires_grad]


def load_kipoi_state_dict(model: BassetNet, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load the Kipoi conversion of the published weights into a "paper" BassetNet.

    That layout is an nn.Sequential numbered 0, 1, ...: Conv2d with (k, 1) kernels, BatchNorm2d,
    ..., Linear layers (possibly wrapped, e.g. "13.1.weight"), BatchNorm1d, ..., the output Linear.
    Layers are matched in order by kind; every shape must agree.
    """
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        prefix, _, name = key.rpartition(".")
        groups.setdefault(prefix, {})[name] = value

    def order(prefix: str) -> tuple[int, ...]:
        return tuple(int(part) for part in prefix.split("."))

    theirs = [groups[p] for p in sorted(groups, key=order)]
    ours = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Linear, nn.BatchNorm1d))]
    if len(theirs) != len(ours):
        raise ArchitectureError(
            f"the Kipoi state dict has {len(theirs)} weighted layers, the model {len(ours)}"
        )
    mapped: dict[str, torch.Tensor] = {}
    names = {module: name for name, module in model.named_modules()}
    own = model.state_dict()
    for tensors, module in zip(theirs, ours, strict=True):
        for name, value in tensors.items():
            if isinstance(module, nn.Conv1d) and name == "weight":
                value = value.squeeze(-1)  # (out, in, k, 1) -> (out, in, k)
            target = f"{names[module]}.{name}"
            expected = own[target]
            if value.shape != expected.shape:
                raise ArchitectureError(
                    f"{target}: the Kipoi weights have shape {tuple(value.shape)}, "
                    f"the model {tuple(expected.shape)}"
                )
            mapped[target] = value
    model.load_state_dict(mapped)

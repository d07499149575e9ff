"""The Basset graphs: flatten sizes, even kernels, refusals, max-norm, the Kipoi weight layout."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from basset.errors import ArchitectureError
from basset.nn.model import (
    build_model,
    check_architecture,
    load_kipoi_state_dict,
    max_norm_,
    norm_constrained,
    parameter_count,
    training_bytes,
)
from basset.nn.softpool import SoftPool1d, SoftPoolFunction
from basset.params import JobParams, pretrained_params


def _pretrained(padding: str) -> JobParams:
    params = pretrained_params()
    params.padding = padding
    return params


@pytest.mark.parametrize(("padding", "flatten"), [("paper", 2000), ("same", 2600)])
def test_pretrained_flatten_sizes(padding: str, flatten: int) -> None:
    params = _pretrained(padding)
    assert check_architecture(params, 600) == flatten
    model = build_model(params, 600, 164)
    assert model.hidden[0][0].in_features == flatten
    assert model(torch.rand(2, 4, 600)).shape == (2, 164)
    assert isinstance(model.first_conv, nn.Conv1d) and model.first_conv.out_channels == 300


@pytest.mark.parametrize("size", [2, 4, 10])
def test_same_padding_keeps_length_with_even_kernels(size: int) -> None:
    params = JobParams(conv_filters=[3, 3], conv_filter_sizes=[size, size + 1], hidden_units=[4])
    model = build_model(params, 37, 2)
    x = torch.rand(3, 4, 37)
    for block in model.conv:
        x = block(x)
        assert x.shape[-1] == 37  # pool width 1: the convolution alone decides the length
    assert model(torch.rand(3, 4, 37)).shape == (3, 2)


def test_paper_graph_lengths_with_ceil_pooling() -> None:
    params = JobParams(
        conv_filters=[5, 6], conv_filter_sizes=[4, 3], pool_width=[3, 4],
        hidden_units=[7], padding="paper",
    )
    # 50 -> 47 -> ceil(47/3)=16 -> 14 -> ceil(14/4)=4
    assert check_architecture(params, 50) == 6 * 4
    assert build_model(params, 50, 1)(torch.rand(2, 4, 50)).shape == (2, 1)


def test_invalid_architecture_names_the_layer() -> None:
    params = JobParams(
        conv_filters=[8, 8, 8], conv_filter_sizes=[19, 11, 7], pool_width=[4, 4, 4],
        hidden_units=[10], padding="paper",
    )
    # 100 -> 82 -> 21 -> 11 -> 3 -> -3: the third conv layer
    with pytest.raises(ArchitectureError, match="conv layer 3 .*filter size 7"):
        check_architecture(params, 100)
    with pytest.raises(ArchitectureError, match="conv layer 3"):
        build_model(params, 100, 2)
    assert check_architecture(params, 200) > 0


def test_max_norm_caps_each_output_unit() -> None:
    params = JobParams(conv_filters=[6], conv_filter_sizes=[5], hidden_units=[8], weight_norm=0.5)
    model = build_model(params, 20, 3)
    weights = norm_constrained(model)
    assert len(weights) == 3  # conv, hidden linear, output linear: not biases or batch norm
    for w in weights:
        w.data.mul_(10)
    before = [w.detach().clone() for w in weights]
    max_norm_(weights, 0.5)
    for w, old in zip(weights, before, strict=True):
        norms = w.flatten(1).norm(dim=1)
        assert norms.max() <= 0.5 + 1e-5
        assert torch.allclose(norms, torch.full_like(norms, 0.5), atol=1e-4)
        # direction kept
        cos = nn.functional.cosine_similarity(w.flatten(1), old.flatten(1), dim=1)
        assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)
    small = [w.detach() * 0.01 for w in weights]
    unchanged = [w.clone() for w in small]
    max_norm_(small, 0.5)
    assert all(torch.equal(a, b) for a, b in zip(small, unchanged, strict=True))


@pytest.mark.parametrize(("length", "width"), [(10, 3), (9, 3), (12, 12), (7, 2), (5, 1)])
def test_soft_pool_keeps_max_pool_lengths_and_spans_max_to_mean(length: int, width: int) -> None:
    x = torch.randn(2, 3, length, dtype=torch.float64)  # a flat pool's mean needs the precision
    pool = SoftPool1d(3, width).double()
    maxed = nn.MaxPool1d(width, ceil_mode=True)(x)
    assert pool(x).shape == maxed.shape
    with torch.no_grad():
        pool.log_sharpness.fill_(9.0)  # sharp: the window's max
    assert torch.allclose(pool(x), maxed, atol=2e-3)
    with torch.no_grad():
        pool.log_sharpness.fill_(-9.0)  # flat: the window's mean, the short last one included
    means = [x[..., i:i + width].mean(-1) for i in range(0, length, width)]
    assert torch.allclose(pool(x), torch.stack(means, -1), atol=1e-3)


@pytest.mark.parametrize(("length", "width"), [(10, 3), (8, 8)])
def test_soft_pool_gradient_is_autograds(length: int, width: int) -> None:
    x = torch.randn(2, 3, length, dtype=torch.float64, requires_grad=True)
    sharpness = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, s: SoftPoolFunction.apply(a, s, width),
                                    (x, sharpness))


def test_soft_last_pool_counts_sites_where_max_pooling_cannot() -> None:
    one_site, two_sites = torch.zeros(1, 1, 40), torch.zeros(1, 1, 40)
    one_site[..., 5] = two_sites[..., 5] = two_sites[..., 30] = 6.0
    pool = SoftPool1d(1, 40)
    assert pool(two_sites).item() > pool(one_site).item() + 0.5  # about log 2 per doubling
    maxed = nn.MaxPool1d(40, ceil_mode=True)
    assert maxed(two_sites).item() == maxed(one_site).item()


def test_last_pool_soft_changes_only_the_last_conv_layer() -> None:
    params = JobParams(conv_filters=[6, 5], conv_filter_sizes=[5, 3], pool_width=[2, 30],
                       hidden_units=[8], last_pool="soft", weight_norm=0.5).validate()
    model = build_model(params, 60, 3)
    pools = [m for m in model.conv.modules() if isinstance(m, (nn.MaxPool1d, SoftPool1d))]
    assert [type(m) for m in pools] == [nn.MaxPool1d, SoftPool1d]
    assert model(torch.rand(4, 4, 60)).shape == (4, 3)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(params, 60, 3)
    maxed = dataclasses.replace(params, last_pool="max")
    assert parameter_count(params, 60, 3) == parameter_count(maxed, 60, 3) + 5
    assert training_bytes(params, 60, 3) > training_bytes(maxed, 60, 3)  # it keeps its softmax
    # max-norm constrains weights, never the sharpness
    assert all(w is not pools[1].log_sharpness for w in norm_constrained(model))


def _kipoi_like(
    filters: list[int],
    sizes: list[int],
    pools: list[int],
    flat: int,
    hidden: list[int],
    targets: int,
) -> nn.Sequential:
    """The Kipoi conversion's layout (Conv2d (k,1), BatchNorm2d, ..., wrapped Linear), small."""

    class Flatten(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], -1)

    layers: list[nn.Module] = []
    channels = [4, *filters]
    for i, (size, pool) in enumerate(zip(sizes, pools, strict=True)):
        layers += [
            nn.Conv2d(channels[i], channels[i + 1], (size, 1)),
            nn.BatchNorm2d(channels[i + 1]),
            nn.ReLU(),
            nn.MaxPool2d((pool, 1), (pool, 1), (0, 0), ceil_mode=True),
        ]
    layers.append(Flatten())
    units = [flat, *hidden]
    for i in range(len(hidden)):
        layers += [
            nn.Sequential(Flatten(), nn.Linear(units[i], units[i + 1])),
            nn.BatchNorm1d(units[i + 1]),
            nn.ReLU(),
            nn.Dropout(0.3),
        ]
    layers += [nn.Sequential(Flatten(), nn.Linear(units[-1], targets)), nn.Sigmoid()]
    return nn.Sequential(*layers)


def test_kipoi_layout_loads_into_the_paper_graph() -> None:
    torch.manual_seed(0)
    filters, sizes, pools, hidden = [6, 5, 4], [5, 3, 3], [3, 2, 2], [9, 7]
    params = JobParams(
        conv_filters=filters, conv_filter_sizes=sizes, pool_width=pools, hidden_units=hidden,
        hidden_dropouts=[0.3, 0.3], padding="paper",
    )
    flat = check_architecture(params, 60)
    kipoi = _kipoi_like(filters, sizes, pools, flat, hidden, 3)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in kipoi.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    kipoi.eval()
    state = kipoi.state_dict()
    assert "0.weight" in state and state["0.weight"].shape == (6, 4, 5, 1)
    assert any(k.endswith(".1.weight") for k in state)  # wrapped Linear, like "13.1.weight"

    model = build_model(params, 60, 3).eval()
    load_kipoi_state_dict(model, state)
    x = torch.rand(5, 4, 60)
    expected = kipoi(x.unsqueeze(-1))  # Kipoi input is (N, 4, L, 1)
    assert torch.allclose(torch.sigmoid(model(x)), expected, atol=1e-6)


def test_kipoi_layout_with_other_shapes_is_refused() -> None:
    params = JobParams(conv_filters=[6], conv_filter_sizes=[5], hidden_units=[9], padding="paper")
    kipoi = _kipoi_like([6], [4], [1], 6 * 57, [9], 3)
    model = build_model(params, 60, 3)
    with pytest.raises(ArchitectureError, match="shape"):
        load_kipoi_state_dict(model, kipoi.state_dict())


class HostTensors(TorchDispatchMode):
    """Records the tensors made from host data (`aten.lift_fresh`: `torch.tensor(...)`, an
    element assignment `t[i] = v`): on a GPU each is a host-to-device copy, which a CUDA graph
    capture of the training step refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func.overloadpacket is torch.ops.aten.lift_fresh:
            self.made.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("last_pool", ["max", "soft"])
@pytest.mark.parametrize("pool", [2, 3])  # 3 leaves a short last window at length 40
def test_a_training_step_makes_no_tensor_from_host_data(last_pool: str, pool: int) -> None:
    params = JobParams(conv_filters=[6, 5], conv_filter_sizes=[5, 3], pool_width=[2, pool],
                       hidden_units=[8], hidden_dropouts=[0.1], conv_dropouts=[0.1],
                       last_pool=last_pool, coef_l2=0.01).validate()
    model = build_model(params, 40, 3)
    x = torch.randn(4, 4, 40)
    with HostTensors() as host:
        loss = model(x).square().sum()
        loss.backward()
    assert host.made == []

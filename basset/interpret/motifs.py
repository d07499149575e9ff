"""basset-motifs: what the first convolution layer learned.

Each filter's activation is taken after its convolution, batch norm and ReLU (the layers up to
the first ReLU: what the next layer sees, before pooling). As Basset's basset_motifs.py, the
sequence windows (filter width) where a filter's activation exceeds `threshold` x its maximum over
the data are its sites; their base frequencies (plus one uniform pseudo-site) are its PWM. Window
positions outside the sequence (the "same" graph's padding) and N count 0.25 per base. Every PWM
goes to a MEME file and is compared with TOMTOM against JASPAR CORE vertebrates.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from basset.errors import ArchitectureError
from basset.interpret.jaspar import Match, Motif, best_matches
from basset.interpret.svg import BASES, html_page, information, logo_svg
from basset.nn.model import BassetNet
from basset.training.resident import codes_to_onehot

log = logging.getLogger(__name__)

THRESHOLD = 0.5
PSEUDOCOUNT = 1.0  # one uniform pseudo-site: 0.25 per base
CONSENSUS_MIN_IC = 0.5  # bits; weaker columns are N in the consensus


@dataclass
class FilterMotif:
    index: int
    n_sites: int
    max_activation: float
    counts: np.ndarray  # (4, w) summed one-hot of the sites

    @property
    def pwm(self) -> np.ndarray:
        """(4, w) base probabilities of the sites, with the pseudocount."""
        return (self.counts + PSEUDOCOUNT / 4) / (self.n_sites + PSEUDOCOUNT)

    @property
    def column_information(self) -> np.ndarray:
        return information(self.pwm)

    @property
    def information(self) -> float:
        """Total information content of the PWM, bits."""
        return float(self.column_information.sum())

    @property
    def consensus(self) -> str:
        best = self.pwm.argmax(axis=0)
        ic = self.column_information
        return "".join(
            BASES[b] if bits >= CONSENSUS_MIN_IC else "N" for b, bits in zip(best, ic, strict=True)
        )


def first_layer(model: BassetNet) -> tuple[nn.Sequential, int]:
    """The layers from the input through the first ReLU after `model.first_conv` (padding, conv,
    batch norm, ReLU), and how many positions they pad on the left."""
    conv = model.first_conv
    for block in model.modules():
        children = list(block.children())
        if isinstance(block, nn.Sequential) and any(child is conv for child in children):
            end = next(
                (i for i, child in enumerate(children) if isinstance(child, nn.ReLU)), None
            )
            if end is None:
                break
            layers = children[: end + 1]
            left = sum(
                int(layer.padding[0])
                for layer in layers
                if isinstance(layer, (nn.Conv1d, nn.ConstantPad1d))
            )
            return nn.Sequential(*layers), left
    raise ArchitectureError("the model's first convolution is not followed by a ReLU in its block")


def filter_motifs(
    model: BassetNet,
    codes: np.ndarray,
    *,
    threshold: float = THRESHOLD,
    batch_size: int = 256,
) -> list[FilterMotif]:
    """PWMs of every first-layer filter from (N, L) uint8 base codes (two passes: maxima, sites)."""
    layers, left = first_layer(model)
    layers.eval()
    device = next(model.parameters()).device
    width = model.first_conv.kernel_size[0]
    n_filters = model.first_conv.out_channels

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(codes), batch_size):
            x = codes_to_onehot(torch.from_numpy(codes[start : start + batch_size]).to(device))
            yield x, layers(x)

    with torch.no_grad():
        maxima = torch.zeros(n_filters, device=device)
        for _x, act in batches():
            maxima = torch.maximum(maxima, act.amax(dim=(0, 2)))
        # A filter that never fires (max <= 0) gets no sites.
        cutoff = torch.where(maxima > 0, threshold * maxima, torch.full_like(maxima, math.inf))
        counts = torch.zeros(n_filters, 4, width, dtype=torch.float64, device=device)
        n_sites = torch.zeros(n_filters, dtype=torch.int64, device=device)
        for x, act in batches():
            positions = act.shape[2]
            right = positions + width - 1 - left - x.shape[2]
            padded = nn.functional.pad(x, (left, right), value=0.25)
            mask = (act > cutoff[None, :, None]).to(x.dtype)
            n_sites += mask.sum(dim=(0, 2)).long()
            for k in range(width):
                counts[:, :, k] += torch.einsum(
                    "nfp,nbp->fb", mask, padded[:, :, k : k + positions]
                ).double()
    return [
        FilterMotif(i, int(n_sites[i]), float(maxima[i]), counts[i].cpu().numpy())
        for i in range(n_filters)
    ]


def meme_text(motifs: Sequence[FilterMotif]) -> str:
    """MEME minimal motif format of the filters with sites (uniform background)."""
    lines = [
        "MEME version 4",
        "",
        "ALPHABET= ACGT",
        "",
        "strands: + -",
        "",
        "Background letter frequencies",
        "A 0.25 C 0.25 G 0.25 T 0.25",
        "",
    ]
    for motif in motifs:
        if motif.n_sites == 0:
            continue
        pwm = motif.pwm
        lines.append(f"MOTIF filter{motif.index} {motif.consensus}")
        lines.append(
            f"letter-probability matrix: alength= 4 w= {pwm.shape[1]} nsites= {motif.n_sites} E= 0"
        )
        lines.extend(" " + "  ".join(f"{v:.6f}" for v in column) for column in pwm.T)
        lines.append("")
    return "\n".join(lines)


def match_filters(motifs: Sequence[FilterMotif], database: Sequence[Motif]) -> dict[int, Match]:
    """The best database match of each filter with sites (and a non-uniform PWM), by index."""
    active = [m for m in motifs if m.n_sites > 0]
    found = best_matches([m.pwm for m in active], database)
    return {m.index: match for m, match in zip(active, found, strict=True) if match is not None}


TABLE_COLUMNS = (
    "filter", "n_sites", "max_activation", "consensus", "information",
    "match_id", "match_name", "p_value", "q_value",
)


def table_text(motifs: Sequence[FilterMotif], matches: dict[int, Match]) -> str:
    rows = ["\t".join(TABLE_COLUMNS)]
    for m in motifs:
        if m.n_sites == 0:
            rows.append(f"{m.index}\t0\t{m.max_activation:.4g}\tno activation\t-\t-\t-\t-\t-")
            continue
        match = matches.get(m.index)
        if match is None:
            rows.append(
                f"{m.index}\t{m.n_sites}\t{m.max_activation:.4g}\t{m.consensus}\t"
                f"{m.information:.3f}\tuniform PWM\t-\t-\t-"
            )
            continue
        rows.append(
            f"{m.index}\t{m.n_sites}\t{m.max_activation:.4g}\t{m.consensus}\t{m.information:.3f}\t"
            f"{match.motif.matrix_id}\t{match.motif.name}\t{match.p_value:.3g}\t{match.q_value:.3g}"
        )
    return "\n".join(rows) + "\n"


def _reverse_complement(pwm: np.ndarray) -> np.ndarray:
    return pwm[::-1, ::-1]


def logos_html(motifs: Sequence[FilterMotif], matches: dict[int, Match], title: str) -> str:
    """All filters, best-matching (lowest q, then p) first, then filters without sites."""

    def order(m: FilterMotif) -> tuple[float, float, int]:
        match = matches.get(m.index)
        return (match.q_value, match.p_value, m.index) if match else (math.inf, math.inf, m.index)

    rows = []
    for m in sorted(motifs, key=order):
        match = matches.get(m.index)
        if m.n_sites == 0:
            rows.append(
                f"<tr><td>{m.index}</td><td colspan='6'>no activation (max "
                f"{m.max_activation:.3g})</td></tr>"
            )
            continue
        if match is None:
            rows.append(
                f"<tr><td>{m.index}</td><td colspan='6'>{m.n_sites} sites, uniform PWM</td></tr>"
            )
            continue
        target = _reverse_complement(match.motif.pwm) if match.reverse else match.motif.pwm
        strand = " (rev. compl.)" if match.reverse else ""
        rows.append(
            f"<tr><td>{m.index}</td><td>{logo_svg(m.pwm)}</td><td class='mono'>{m.consensus}<br>"
            f"{m.n_sites} sites, {m.information:.1f} bits</td>"
            f"<td>{html.escape(match.motif.name)}<br>{match.motif.matrix_id}{strand}</td>"
            f"<td>{logo_svg(target)}</td><td>{match.p_value:.2g}</td><td>{match.q_value:.2g}</td></tr>"
        )
    body = (
        "<table><tr><th>filter</th><th>logo</th><th>consensus</th><th>best JASPAR match</th>"
        "<th>its logo</th><th>p</th><th>q</th></tr>\n" + "\n".join(rows) + "\n</table>"
    )
    return html_page(title, body)

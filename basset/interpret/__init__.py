"""What did the model learn: first-layer filter motifs matched to JASPAR (basset-motifs) and
in-silico saturation mutagenesis (basset-sat); their command lines are in basset.cli."""

from __future__ import annotations

from typing import TYPE_CHECKING

from basset.lazy import lazy_names

if TYPE_CHECKING:
    from basset.interpret.jaspar import best_matches, jaspar_vertebrates
    from basset.interpret.motifs import filter_motifs, match_filters
    from basset.interpret.sat import saturation_mutagenesis, select_targets

__all__ = [
    "best_matches",
    "filter_motifs",
    "jaspar_vertebrates",
    "match_filters",
    "saturation_mutagenesis",
    "select_targets",
]

__getattr__ = lazy_names(__name__, {
    "best_matches": "jaspar",
    "jaspar_vertebrates": "jaspar",
    "filter_motifs": "motifs",
    "match_filters": "motifs",
    "saturation_mutagenesis": "sat",
    "select_targets": "sat",
})

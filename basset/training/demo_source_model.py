"""The demo source model a transfer study fine-tunes (hpo's generate_seed_model): the demo
study's paper-scaled reference trial, trained a few epochs on the source demo set
(basset.data.demo).
"""

from __future__ import annotations

import logging
from pathlib import Path

from basset.data.demo import make_demo

log = logging.getLogger(__name__)

SOURCE_MODEL_PARAMS = {
    "conv_filters": [64, 48, 48], "conv_filter_sizes": [19, 11, 7], "pool_width": [3, 4, 4],
    "hidden_units": [128, 128], "hidden_dropouts": [0.3, 0.3], "learning_rate": 0.002,
    "momentum": 0.98, "weight_norm": 7.0, "batch_size": 64,
}
SOURCE_MODEL_EPOCHS = 6


def make_source_model(path: str | Path, *, seed: int = 1, quiet: bool = True) -> Path:
    """Train the demo source model on the source demo set (written beside it as
    `source_data.h5` if missing) and save its best checkpoint as `path`."""
    from basset.data.h5read import load_data
    from basset.params import JobParams
    from basset.training.seam import TrainOptions  # the trainer (torch): only when a model is made
    from basset.training.trainer import train

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data_path = path.parent / "source_data.h5"
    if not data_path.exists():
        make_demo(data_path, seed=seed, quiet=quiet)
    prefix = path.parent / "source"
    result = train(
        JobParams(**SOURCE_MODEL_PARAMS).validate(), load_data(data_path),  # type: ignore[arg-type]
        options=TrainOptions(max_epochs=SOURCE_MODEL_EPOCHS, stagnant_t=SOURCE_MODEL_EPOCHS,
                             rand=seed, save_prefix=prefix, quiet=quiet),
    )
    assert result.best_path is not None, "a finished run with a save prefix saves its best"
    result.best_path.replace(path)
    log.info("demo source model %s: best valid AUROC %.4f at epoch %d", path,
             result.best_metric, result.best_epoch)
    return path

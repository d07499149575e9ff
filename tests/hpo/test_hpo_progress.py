"""The run's headline counts: a requeued trial (its retry copy counts instead) is not a failure."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from hpo import progress


def test_a_requeued_trial_is_counted_once_and_not_as_failed() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    done = study.ask()
    study.tell(done, 0.8)
    crashed = study.ask()
    study.tell(crashed, state=TrialState.FAIL)
    broken = study.ask()
    study.tell(broken, state=TrialState.FAIL)  # a real failure: no retry replaced it
    study.enqueue_trial({})
    copy = study.trials[-1]
    copy_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name("s"), copy.number)
    storage.set_trial_system_attr(copy_id, "retry_history", [crashed.number])

    snap = progress.snapshot(storage, "s")
    assert snap.counted == 2  # the waiting copy counts once it starts, the crashed one never
    assert (snap.counts["FAIL"], snap.requeued, snap.finished) == (1, 1, 2)
    assert progress.headline(snap, 4) == (
        "s: 2/4 done (1 complete, 0 pruned, 1 failed, 1 requeued), 0 running, 1 waiting, "
        "best 0.8000 (trial 0)"
    )

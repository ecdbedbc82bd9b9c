"""Which searched Flink keys explain throughput: Optuna's PED-ANOVA over a study, per Flink key.

Search knowledge (how a parameter maps to the key it sets), so it lives with the search; the
runner's recommendation and the report's plot both read it from here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import optuna
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tuner.flink import options as fo
from tuner.search.space import COMPRESSION_PARAM, WARM_START_ATTR

__all__ = ["MIN_TRIALS_FOR_IMPORTANCE", "key_importances", "param_importances", "param_key"]

# Fewer completed trials than this give no importance (nothing to split on).
MIN_TRIALS_FOR_IMPORTANCE = 3


def param_key(param: str) -> str:
    """The Flink key an Optuna parameter stands for."""
    if param == COMPRESSION_PARAM:
        return fo.COMPRESSION_PER_LEVEL
    return param.removesuffix(".log2")


def key_importances(param_importances: Mapping[str, float]) -> dict[str, float]:
    """Optuna's parameter importances summed per Flink key."""
    out: dict[str, float] = {}
    for param, value in param_importances.items():
        key = param_key(param)
        out[key] = out.get(key, 0.0) + value
    return out


def param_importances(study: optuna.Study | None) -> dict[str, float] | None:
    """PED-ANOVA importance of each searched Flink key for throughput, largest first.

    None when there is no study or fewer than MIN_TRIALS_FOR_IMPORTANCE completed trials, or
    when the trials do not vary enough to split on. Optuna's parameters are mapped to the Flink
    keys they set (a size searched as ``<key>.log2`` counts for ``<key>``). PED-ANOVA (Optuna's
    default) needs no scikit-learn and is deterministic, so a re-rendered report shows the same
    bars; importances are normalised to sum to 1.
    """
    if study is None:
        return None
    # The search's own trials only: the option sets told to it (a warm start) sit together
    # near Flink's default, a sample that would skew what the search's spread says.
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    complete = [t for t in finished if WARM_START_ATTR not in t.user_attrs]
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return None
    if len(complete) < len(finished):
        study = optuna.create_study(directions=study.directions)
        study.add_trials(complete)
    # PED-ANOVA explains what makes the target *low*; throughput is maximised, so it is
    # negated (multi-objective studies, the pareto objective, list throughput first).
    sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0
    try:
        with warnings.catch_warnings():
            # One warning restates the above (raised whenever a target is given); the other
            # fires for conditional parameters (bloom bits only exist with the filter on) on
            # every small study: the plot is approximate there by nature.
            warnings.filterwarnings("ignore", message=".*achieve low `target` values")
            warnings.filterwarnings("ignore", message=".*have less than 2 trials")
            raw = get_param_importances(
                study,
                evaluator=PedAnovaImportanceEvaluator(),
                target=lambda t: sign * t.values[0],
            )
    except (RuntimeError, ValueError):
        # Optuna raises these when every trial has the same value or no shared parameter.
        return None
    imp = key_importances(raw)
    return dict(sorted(imp.items(), key=lambda kv: (-kv[1], kv[0])))

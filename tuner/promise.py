"""The one figure a run states: the gain of exactly the configuration it emits, from the most
faithful engine that measured it, turned into a gain of the job where a recording says how much
of the job's time its state calls take.

Every other figure (the replay's re-measurement when the confirmation measured the emitted
configuration on Flink's own backend, the search's single runs) is secondary and labelled as such
by the report. Pure functions over what the run measured.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from tuner.confirm import Confirmation
from tuner.costmodel import DISK_BOUND_SHARE
from tuner.recommend import Gain, engine_name, reference_name
from tuner.scale import ScaleSpec
from tuner.trace.parquet import recording_meta
from tuner.workload import Workload

__all__ = ["Promise", "StateShare", "job_gain", "promise_of", "state_share"]


@dataclass(frozen=True)
class StateShare:
    """The share of the job's task time spent in state calls, as the recording measured it;
    ``value`` is None where it was not measured or cannot be trusted (``doubt`` says why)."""

    value: float | None
    doubt: str = ""

    @property
    def trusted(self) -> bool:
        """Whether the share can turn a state-call gain into a job gain."""
        return self.value is not None and not self.doubt


def state_share(workload: Workload) -> StateShare:
    """The recorded share of task time in state calls of the job ``workload`` replays: only a
    recording (``trace:``) has one, with the importer's doubt when it cannot be trusted."""
    if workload.trace is None:
        return StateShare(None, "the workload is not a recording of the job")
    meta = recording_meta(workload.trace)
    value = meta.get("state_cpu_share")
    doubt = str(meta.get("state_cpu_share_doubt") or "")
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        return StateShare(None, doubt or "the recording carries no share of task time")
    return StateShare(float(value), doubt)


def job_gain(state_gain: float, share: float) -> float:
    """Amdahl's law: the job's throughput gain when the ``share`` of its time spent in state
    calls gets ``state_gain`` faster and the rest stays as it was."""
    return 1.0 / ((1.0 - share) + share / (1.0 + state_gain)) - 1.0


@dataclass(frozen=True)
class Promise:
    """The run's one number: ``gain`` (median, with the pairwise range ``low`` .. ``high`` over
    ``n`` interleaved rounds) of configuration ``label`` over the reference, measured on
    ``engine``, for state calls; the job's gain beside it where ``share`` allows."""

    label: str
    engine: str
    reference: str
    gain: float | None  # None: no configuration beats the reference ("keep")
    low: float | None
    high: float | None
    n: int
    significant: bool
    share: StateShare
    note: str = ""  # why there is no gain, when there is none
    # Flink's default's share of modelled time waiting for block reads, when past
    # tuner.costmodel.DISK_BOUND_SHARE: the modelled price of a miss decides the figure then.
    disk_bound: float | None = None
    # The share of the job the measurement replayed (1: the job at full size). A model's gain is
    # not the job's: on two jobs a 1/10 model's gain was 0.7x and 1.4x full size's.
    model: float = 1.0
    # Set when the emitted keys act on restores only (tuner.flink.options.RESTORE_ONLY): why
    # the state calls are the same work as the reference's, whatever ``gain`` this machine's
    # clock measured.
    unchanged: str = ""

    @property
    def job(self) -> tuple[float, float, float] | None:
        """(median, low, high) of the job's gain, or None without a trusted share."""
        if self.gain is None or self.low is None or self.high is None:
            return None
        if not self.share.trusted or self.share.value is None or self.unchanged:
            return None
        s = self.share.value
        return job_gain(self.gain, s), job_gain(self.low, s), job_gain(self.high, s)

    def describe(self) -> str:
        """One line: the figure, what it is a gain of, what measured it."""
        where = engine_name(self.engine)
        ref = reference_name(self.reference)
        if self.gain is None or self.low is None or self.high is None:
            return f"keep your configuration: {self.note} (measured on {where})"
        on_model = f" on a {ScaleSpec(self.model).label} model of the job" if self.model < 1 else ""
        measured = (
            f"measured on {where}{on_model}, {self.n} interleaved rounds, pairwise range "
            f"{self.low:+.1%} .. {self.high:+.1%}"
        )
        if self.unchanged:
            return (
                f"state calls unchanged for {self.label}: {self.unchanged}; this machine's "
                f"clock measured {self.gain:+.1%} ({measured}), the spread between processes, "
                "not an effect of the configuration"
            )
        noise = "" if self.significant else "; within noise: the rounds disagree on the sign"
        if self.disk_bound is not None:
            return (
                f"no gain can be promised for {self.label}: the job is disk-bound "
                f"({self.disk_bound:.0%} of Flink's default's modelled time waits for block "
                "reads), and the modelled price of a read was 1.3-8.7x off on a real disk "
                "(docs: disk pricing); the model's estimate is "
                f"{self.gain:+.1%} on state calls ({measured}){noise}. Tune with the disk "
                "the job's RocksDB files really sit on (--disk), or measure the real job"
            )
        job = self.job
        if job is not None:
            assert self.share.value is not None
            return (
                f"{job[0]:+.1%} job throughput over {ref} for {self.label} ({job[1]:+.1%} .. "
                f"{job[2]:+.1%}): state calls {self.gain:+.1%} ({measured}), times the "
                f"recorded {self.share.value:.0%} of task time in state calls{noise}"
            )
        why = self.share.doubt or "no recording says how much of the job's time they take"
        return (
            f"{self.gain:+.1%} on state calls over {ref} for {self.label} ({measured}){noise}; "
            f"not a job-level figure: {why}"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (recommendation.json's ``promise``), with the job figures and the line."""
        d = asdict(self)
        job = self.job
        d["job_gain"], d["job_low"], d["job_high"] = job if job is not None else (None,) * 3
        d["text"] = self.describe()
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()
        }


def _finite(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


def promise_of(
    label: str,
    share: StateShare,
    *,
    confirmation: Confirmation | None,
    replay_gain: Gain | None,
    read_wait: float | None = None,
    model: float = 1.0,
) -> Promise | None:
    """The promise for the emitted configuration ``label``: the confirmation's figure for it when
    Flink's own backend measured it, else the replay's re-measurement of it (``replay_gain``
    must be of the emitted settings); None when neither measured it against the reference.
    ``read_wait``: Flink's default's share of modelled time waiting for block reads; ``model``:
    the share of the job the measurements replayed (a scale or key-sample factor)."""
    disk_bound = read_wait if read_wait is not None and read_wait >= DISK_BOUND_SHARE else None
    if confirmation is not None:
        chosen = confirmation.chosen_config()
        if chosen is not None and not _finite(chosen.gain, chosen.low, chosen.high):
            return None  # a figure that is not a number promises nothing
        if chosen is None:
            return Promise(
                "your configuration",
                confirmation.engine,
                confirmation.reference,
                None,
                None,
                None,
                confirmation.rounds,
                False,
                share,
                note=confirmation.reason,
            )
        return Promise(
            chosen.label,
            confirmation.engine,
            confirmation.reference,
            chosen.gain,
            chosen.low,
            chosen.high,
            len(chosen.values),
            chosen.beats_noise,
            share,
            disk_bound=disk_bound,
            model=model,
        )
    if replay_gain is None or not _finite(
        replay_gain.median_gain, replay_gain.low, replay_gain.high
    ):
        return None
    return Promise(
        label,
        replay_gain.engine,
        replay_gain.reference,
        replay_gain.median_gain,
        replay_gain.low,
        replay_gain.high,
        replay_gain.n,
        replay_gain.significant,
        share,
        disk_bound=disk_bound,
        model=model,
    )

"""Fit a workload description to a trace (recorded or generated), and say how close it is.

Per state (timer services become their owner's ``timers`` or ``window``):

* **kind, key type and size**: from the trace header.
* **keys**: distinct keys the state saw. **popularity**: uniform when the top 1 % of keys take
  at most 1.15× what they take in a uniform sample of as many calls, else zipf with the
  exponent whose sample of as many calls has the recorded top-1 % share (bisection).
* **operations**: value/reducing/aggregating: a GET followed by the write on the same key is one
  ``read_update``; other GETs ``read``, writes ``update``, CLEARs ``clear``. A windowed state's
  fire (GET + CLEAR per fired window) is Flink's, not the job's: as many GETs and CLEARs as the
  window timers fired are left out. Lists: ``read``/``append``/``update`` (clears become
  ``elements_per_key``); maps one to one.
* **accesses_per_record**: those operations per input record. Records come from the recording
  (the busiest operator's key switches less its timer fires), else the busiest state's operations.
* **value_size**: fixed when every write has one size (or within 2 %), else lognormal with the
  recorded mean, the standard deviation of the log, clipped to the recorded min and max.
* **map** ``entries_per_key``: the 99th percentile of distinct user keys per key; **list**
  ``elements_per_key``:
  appends per clear (appends per key without clears).
* **windows**: tumbling, ``tumbling_records`` = records / distinct window starts (a trace's ts is
  processing time, so window lengths are expressed in records).
* **timers**: user timers go to the busiest non-windowed state; ``per_record`` = registrations
  per record, ``delay`` = the median number of records between a timer's registration and its
  fire, at the fitted ``records_per_second``.
* **TTL**: a TTL'd state is visible, its duration is not: the report says so, the YAML leaves
  it out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tuner.errors import TunerError
from tuner.trace.ops import TIMER_STATE_PREFIX, Op, OpBatch, StateInfo
from tuner.trace.parquet import read_trace, recording_meta

__all__ = [
    "FitOutcome",
    "FitResult",
    "StateFigures",
    "compare",
    "fit_to_file",
    "fit_trace",
    "render_report",
    "state_figures",
]

_WRITE = {"value": Op.UPDATE, "reducing": Op.ADD, "aggregating": Op.ADD}
_LIST_OPS = {Op.GET: "read", Op.ADD: "append", Op.UPDATE: "update", Op.CLEAR: "clear"}
_MAP_OPS = {
    Op.GET: "get",
    Op.PUT: "put",
    Op.REMOVE: "remove",
    Op.CONTAINS: "contains",
    Op.ITERATE: "iterate",
    Op.CLEAR: "clear",
}
UNIFORM_SLACK = 1.15
POPULARITY_SAMPLE = 300_000


@dataclass(frozen=True)
class StateFigures:
    """What the fit report compares, for one state of one stream."""

    calls: int
    op_mix: dict[str, float]  # share of calls per op name
    distinct_keys: int
    top1pct_share: float  # share of calls to the 1 % most-called keys
    size_quantiles: tuple[int, int, int]  # p50, p90, p99 of written sizes (0 when no writes)


@dataclass(frozen=True)
class FitResult:
    """A fitted workload (plain data in the file format) and what the fit could not see."""

    workload: dict[str, Any]
    records: int
    notes: tuple[str, ...]


def _top_share(counts: npt.NDArray[np.int64]) -> float:
    if counts.size == 0:
        return 0.0
    top = max(1, math.ceil(counts.size / 100))
    part = np.partition(counts, counts.size - top)[counts.size - top :]
    return float(part.sum() / counts.sum())


def _sampled_top_share(keys: int, exponent: float, u: npt.NDArray[np.float64]) -> float:
    """Top-1 % share of ``len(u)`` draws from zipf(``exponent``) over ``keys`` ranks (uniform
    at 0), drawn with the fixed uniforms ``u`` (common random numbers: monotone in exponent)."""
    w = np.arange(1, keys + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(w)
    ranks = np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), keys - 1)
    return _top_share(np.bincount(ranks, minlength=keys).astype(np.int64))


def _popularity(counts: npt.NDArray[np.int64]) -> tuple[str | dict[str, Any], float]:
    """Uniform, or zipf with the exponent whose *sampled* top-1 % share (same number of calls
    over the same keys) matches: a finite sample of a uniform choice has hot keys too."""
    keys = int(counts.size)
    calls = int(counts.sum())
    rng = np.random.default_rng(0)
    if calls > POPULARITY_SAMPLE:
        # Subsample the calls (binomial thinning) so the fit's cost is bounded.
        counts = rng.binomial(counts, POPULARITY_SAMPLE / calls)
        calls = int(counts.sum())
    share = _top_share(counts)
    u = rng.random(max(calls, 1))
    if keys < 100 or share <= UNIFORM_SLACK * _sampled_top_share(keys, 0.0, u):
        return "uniform", 0.0
    lo, hi = 0.0, 4.0
    for _ in range(25):
        mid = (lo + hi) / 2
        if _sampled_top_share(keys, mid, u) < share:
            lo = mid
        else:
            hi = mid
    exponent = round((lo + hi) / 2, 3)
    return {"zipf": {"exponent": exponent}}, exponent


def _size_dist(sizes: npt.NDArray[np.int32]) -> int | dict[str, Any]:
    if sizes.size == 0:
        return 8
    lo, hi = int(sizes.min()), int(sizes.max())
    mean = float(sizes.mean())
    if hi == lo or (hi - lo) <= 0.02 * mean:
        return max(1, round(float(np.median(sizes))))
    sigma = float(np.log(np.maximum(sizes, 1)).std())
    return {
        "lognormal": {
            "mean": max(1, round(mean)),
            "sigma": round(max(sigma, 0.01), 3),
            "min": max(1, lo),
            "max": max(1, hi),
        }
    }


def _value_ops(kind: str, op: npt.NDArray[np.int8], key: npt.NDArray[np.int64]) -> dict[str, int]:
    write = int(_WRITE[kind])
    get = op == int(Op.GET)
    paired = np.zeros(op.shape[0], dtype=bool)
    if op.shape[0] > 1:
        paired[:-1] = get[:-1] & (op[1:] == write) & (key[:-1] == key[1:])
    pairs = int(paired.sum())
    return {
        "read_update": pairs,
        "read": int(get.sum()) - pairs,
        "update": int((op == write).sum()) - pairs,
        "clear": int((op == int(Op.CLEAR)).sum()),
    }


def state_figures(b: OpBatch, state: int) -> StateFigures:
    """The fit report's figures of one state in ``b``."""
    mask = b.state == state
    op = b.op[mask]
    calls = int(op.shape[0])
    names, counts = np.unique(op, return_counts=True)
    mix = {Op(int(o)).name.lower(): int(c) / calls for o, c in zip(names, counts, strict=True)}
    _, per_key = np.unique(b.key[mask], return_counts=True)
    writes = np.isin(op, [int(Op.UPDATE), int(Op.ADD), int(Op.PUT)])
    sizes = b.value_size[mask][writes]
    q = (
        tuple(int(x) for x in np.percentile(sizes, [50, 90, 99], method="lower"))
        if sizes.size
        else (0, 0, 0)
    )
    return StateFigures(
        calls=calls,
        op_mix=mix,
        distinct_keys=int(per_key.size),
        top1pct_share=_top_share(per_key.astype(np.int64)),
        size_quantiles=(q[0], q[1], q[2]),
    )


def _timer_lag(b: OpBatch, timer_state: int, record_of_row: npt.NDArray[np.float64]) -> float:
    """Median number of records between a timer's registration and its fire."""
    mask = b.state == timer_state
    op, key, ts = b.op[mask], b.key[mask], b.timer_ts[mask]
    rec = record_of_row[mask]
    reg = op == int(Op.REGISTER_TIMER)
    fire = op == int(Op.FIRE_TIMER)
    if not reg.any() or not fire.any():
        return 0.0
    # The last registration of (key, timestamp) before its fire: a timer queue is a set.
    code_reg = key[reg] * 1_000_003 + ts[reg]
    order = np.argsort(code_reg, kind="stable")
    sorted_codes = code_reg[order]
    code_fire = key[fire] * 1_000_003 + ts[fire]
    pos = np.searchsorted(sorted_codes, code_fire, side="right") - 1
    ok = (pos >= 0) & (sorted_codes[np.maximum(pos, 0)] == code_fire)
    if not ok.any():
        return 0.0
    reg_rec = rec[reg][order][pos[ok]]
    lag = rec[fire][ok] - reg_rec
    return float(np.median(np.maximum(lag, 0)))


def fit_trace(
    trace_path: str | os.PathLike[str], *, name: str | None = None, flink_version: str = "2.x"
) -> FitResult:
    """Fit a workload to the trace at ``trace_path`` (its measured phase) as plain data in the
    workload file format. Memory is a placeholder (``managed_per_slot: 256 mb``): take the
    job's own from its Flink configuration (``tuner workload from-config``)."""
    path = Path(trace_path)
    trace = read_trace(path)
    batches = list(trace.batches("measure"))
    if not batches:
        raise TunerError("the trace has no measured rows to fit", file=str(path))
    b = OpBatch.concat(batches)
    header = trace.header
    meta = recording_meta(path)
    states: list[tuple[int, StateInfo]] = [
        (i, s) for i, s in enumerate(header.states) if s.kind != "timers"
    ]
    if not states:
        raise TunerError("the trace has no keyed state besides timers", file=str(path))
    notes: list[str] = []
    ops: dict[int, dict[str, int]] = {}
    timer_index = {s.name: i for i, s in enumerate(header.states) if s.kind == "timers"}
    window_fires = 0
    if f"{TIMER_STATE_PREFIX}event_window-timers" in timer_index:
        wt = timer_index[f"{TIMER_STATE_PREFIX}event_window-timers"]
        window_fires = int(((b.state == wt) & (b.op == int(Op.FIRE_TIMER))).sum())
    for i, s in states:
        mask = b.state == i
        op = b.op[mask]
        if s.kind in _WRITE:
            counts = _value_ops(s.kind, op, b.key[mask])
        else:
            table = _LIST_OPS if s.kind == "list" else _MAP_OPS
            counts = {n: int((op == int(o)).sum()) for o, n in table.items()}
        if s.windowed and window_fires:
            # The window operator's own fire: one GET (emit) and one CLEAR per fired window.
            fired = min(window_fires, counts.get("clear", 0))
            counts["clear"] = counts.get("clear", 0) - fired
            read = "read_update" if s.kind in _WRITE and counts.get("read", 0) < fired else "read"
            counts[read] = max(0, counts.get(read, 0) - fired)
        ops[i] = {k: v for k, v in counts.items() if v > 0}
    records = int(meta.get("records", 0)) or max(sum(c.values()) for c in ops.values())
    records = max(records, 1)
    duration_ms = int(b.ts.max() - b.ts.min()) if len(b) else 0
    rps = max(1, round(records / max(duration_ms / 1000, 1e-3)))
    # The record each row belongs to, spread evenly over the stream (for timer delays).
    record_of_row = np.linspace(0, records, num=len(b), endpoint=False)

    out_states: list[dict[str, Any]] = []
    user_timers = [n for n in timer_index if "user-timers" in n]
    timer_owner = None
    # The user timer service with registrations (event or processing time); the other one
    # exists in every keyed operator but may be unused.
    registered = {
        n: int(((b.state == timer_index[n]) & (b.op == int(Op.REGISTER_TIMER))).sum())
        for n in user_timers
    }
    timer_service = max(registered, key=lambda n: registered[n]) if registered else None
    if timer_service is not None and registered[timer_service] == 0:
        timer_service = None
    if timer_service is not None:
        plain = [(i, s) for i, s in states if not s.windowed]
        if plain:
            timer_owner = max(plain, key=lambda t: sum(ops[t[0]].values()))[0]
    for i, s in states:
        mask = b.state == i
        total = sum(ops[i].values())
        if total == 0:
            notes.append(f"{s.name}: no calls of its own (only the window operator's); left out")
            continue
        _, per_key = np.unique(b.key[mask], return_counts=True)
        popularity, _ = _popularity(per_key.astype(np.int64))
        writes = np.isin(b.op[mask], [int(Op.UPDATE), int(Op.ADD), int(Op.PUT)])
        entry: dict[str, Any] = {
            "name": s.name.replace("/", "-"),
            "kind": s.kind,
            "keys": int(per_key.size),
            "key_type": s.key_type,
        }
        if s.key_type == "string":
            entry["key_size"] = f"{s.key_size} b"
        entry["popularity"] = popularity
        size = _size_dist(b.value_size[mask][writes])
        entry["value_size"] = f"{size} b" if isinstance(size, int) else _sizes_in_bytes(size)
        entry["accesses_per_record"] = round(total / records, 4)
        shares = _shares(ops[i])
        entry["operations"] = shares
        if s.kind == "map":
            pairs = np.unique(np.stack([b.key[mask], b.user_key[mask]]), axis=1)
            pairs = pairs[:, pairs[1] >= 0]
            # A key seen a few times shows only some of its entries: the well-sampled keys
            # (99th percentile of distinct user keys per key) show them all.
            _, distinct = np.unique(pairs[0], return_counts=True)
            typical = float(np.percentile(distinct, 99)) if distinct.size else 1.0
            entry["entries_per_key"] = max(1, round(typical))
            entry["user_key_size"] = f"{s.user_key_size} b"
        if s.kind == "list":
            # A list's clears are the job's cleanup after some appends: the generator makes them
            # itself every `elements_per_key` appends, so they leave the operation mix.
            appends = ops[i].get("append", 0)
            clears = ops[i].get("clear", 0)
            if clears and appends:
                entry["elements_per_key"] = max(1, round(appends / clears))
                rest = {k: v for k, v in ops[i].items() if k != "clear"}
                entry["operations"] = _shares(rest)
                entry["accesses_per_record"] = round(sum(rest.values()) / records, 4)
            else:
                entry["elements_per_key"] = max(1, round(appends / max(1, per_key.size)))
        if s.windowed:
            starts = np.unique(b.ns_start[mask & (b.ns_start >= 0)])
            entry["window"] = {"tumbling_records": max(1, round(records / max(1, starts.size)))}
            if starts.size > 1:
                lengths = np.unique((b.ns_end - b.ns_start)[mask & (b.ns_start >= 0)])
                if lengths.size and int(np.diff(starts).min()) < int(lengths.min()):
                    notes.append(f"{s.name}: sliding windows fitted as tumbling")
        if s.ttl:
            notes.append(f"{s.name}: TTL is on; its duration is not visible, set `ttl` by hand")
        if i == timer_owner and timer_service is not None:
            ti = timer_index[timer_service]
            regs = int(((b.state == ti) & (b.op == int(Op.REGISTER_TIMER))).sum())
            lag = _timer_lag(b, ti, record_of_row)
            entry["timers"] = {
                "per_record": round(regs / records, 4),
                "delay": f"{max(1, round(lag * 1000 / rps))} ms",
                "domain": "processing" if "processing_" in timer_service else "event",
            }
        out_states.append(entry)
    if not out_states:
        raise TunerError("no state with calls of its own to fit", file=str(path))
    workload: dict[str, Any] = {
        "name": name or _name_of(path),
        "description": f"Fitted to {path.name} ({len(b)} calls, {records} records)",
        "flink_version": flink_version,
        "seed": 1,
        "max_parallelism": header.max_parallelism,
        **({} if header.compressibility is None else {"compressibility": header.compressibility}),
        "memory": {"mode": "managed", "managed_per_slot": "256 mb"},
        "replay": {"records": records, "preload_fraction": 0.0, "records_per_second": rps},
        "states": out_states,
    }
    return FitResult(workload=workload, records=records, notes=tuple(notes))


def _sizes_in_bytes(d: dict[str, Any]) -> dict[str, Any]:
    inner = dict(d["lognormal"])
    for k in ("mean", "min", "max"):
        inner[k] = f"{inner[k]} b"
    return {"lognormal": inner}


def _shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    names = sorted(counts)
    shares = {n: round(counts[n] / total, 6) for n in names}
    # Shares must add up to 1: the rounding remainder goes to the largest.
    biggest = max(names, key=lambda n: counts[n])
    shares[biggest] = round(shares[biggest] + 1.0 - sum(shares.values()), 6)
    return shares


def _name_of(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in path.stem)
    return f"{stem or 'recorded'}-fitted"


def compare(
    recorded: OpBatch, fitted: OpBatch, names: Iterable[tuple[int, int, str]]
) -> list[tuple[str, StateFigures, StateFigures]]:
    """(name, recording's figures, fitted stream's figures) for each (recorded index, fitted
    index, name) of ``names``."""
    return [(n, state_figures(recorded, r), state_figures(fitted, f)) for r, f, n in names]


def render_report(rows: list[tuple[str, StateFigures, StateFigures]], notes: Iterable[str]) -> str:
    """The fit report as Markdown: per state, recording vs fitted stream."""
    lines = [
        "| state | figure | recording | fitted |",
        "|---|---|---:|---:|",
    ]
    for name, rec, fit in rows:
        ops = sorted(set(rec.op_mix) | set(fit.op_mix))
        mix = ", ".join(f"{o} {rec.op_mix.get(o, 0):.1%}" for o in ops)
        fmix = ", ".join(f"{o} {fit.op_mix.get(o, 0):.1%}" for o in ops)
        lines += [
            f"| {name} | calls | {rec.calls} | {fit.calls} |",
            f"| | op mix | {mix} | {fmix} |",
            f"| | distinct keys | {rec.distinct_keys} | {fit.distinct_keys} |",
            f"| | top-1% key share | {rec.top1pct_share:.1%} | {fit.top1pct_share:.1%} |",
            "| | written size p50/p90/p99 (B) | "
            + "/".join(map(str, rec.size_quantiles))
            + " | "
            + "/".join(map(str, fit.size_quantiles))
            + " |",
        ]
    text = "\n".join(lines) + "\n"
    notes = list(notes)
    if notes:
        text += "\n" + "\n".join(f"* {n}" for n in notes) + "\n"
    return text


@dataclass(frozen=True)
class FitOutcome:
    """What ``tuner workload fit`` wrote and measured."""

    path: Path
    report: str
    fit: FitResult


def fit_to_file(
    trace_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    memory: dict[str, Any] | None = None,
    flink_version: str = "2.x",
) -> FitOutcome:
    """Fit the trace, check the result with the workload loader, write it as YAML to ``output``
    and return the fit report (the fitted workload's generated stream vs the recording)."""
    from tuner.fileio import atomic_write_text
    from tuner.trace.generator import generate, stream_header
    from tuner.workload import parse_workload

    out = Path(output)
    result = fit_trace(trace_path, name=None, flink_version=flink_version)
    data = dict(result.workload)
    if memory is not None:
        data["memory"] = memory
    w = parse_workload(data, str(out))  # the loader's checks: a fit never writes a bad file
    header = stream_header(w)
    fitted = OpBatch.concat(list(generate(w, "measure")))
    trace = read_trace(trace_path)
    recorded = OpBatch.concat(list(trace.batches("measure")))
    rec_index = {
        (s.name if s.kind == "timers" else s.name.replace("/", "-")): i
        for i, s in enumerate(trace.header.states)
    }
    pairs = [
        (rec_index[s.name], j, s.name) for j, s in enumerate(header.states) if s.name in rec_index
    ]
    report = render_report(compare(recorded, fitted, pairs), result.notes)
    import yaml

    text = (
        f"# Fitted by `tuner workload fit` to {Path(trace_path).name}; edit to resize.\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=False)
    )
    atomic_write_text(out, text)
    return FitOutcome(path=out, report=report, fit=result)

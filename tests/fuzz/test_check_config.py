"""Fuzzing check-config's reader: exit 2 (TunerError) or a list of problems, never another
exception. Random text and edits of the example configs, read in all three dialects."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz._budget import budget, mutate, refused_or_read
from tests.fuzz.strategies import EDITS
from tuner.flink.config_check import check_config

DATA = Path(__file__).parents[1] / "data" / "configs"
EXAMPLES = sorted(p for p in DATA.rglob("*") if p.is_file())
TEXTS = [p.read_bytes() for p in EXAMPLES]
NAMES = ["config.yaml", "flink-conf.yaml", "deployment.yaml"]
VERSIONS = ["1.20", "2.3"]
_KEYS = st.sampled_from(
    [
        "state.backend.rocksdb.thread.num",
        "state.backend.rocksdb.writebuffer.size",
        "state.backend.rocksdb.memory.managed",
        "state.backend.rocksdb.compaction.style",
        "state.backend.rocksdb.\x1b[31m",
        "taskmanager.memory.process.size",
    ]
)
_VALUE_LIST = ["4", "9" * 5000, "64 mb", "true", "[1, 2]", "{a: 1}", "!!int abc", "!!float x"]
_VALUE_LIST += ["1e999", "0x" + "f" * 200, "'quoted'", "&a 1", "*a", "!!binary x", "2001-02-30"]
_VALUES = st.sampled_from([*_VALUE_LIST, ".nan", "-1"])


def _check(data: bytes, name: str, version: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / name
        f.write_bytes(data)
        refused_or_read(lambda: [str(p) for p in check_config(f, version).problems])


@budget(60)
@given(st.binary(max_size=300), st.sampled_from(NAMES), st.sampled_from(VERSIONS))
def test_random_bytes(data: bytes, name: str, version: str) -> None:
    _check(data, name, version)


@budget(100)
@given(
    st.sampled_from(range(len(TEXTS))),
    EDITS,
    st.sampled_from(NAMES),
    st.sampled_from(VERSIONS),
)
def test_edited_example(which: int, edits: list[tuple[int, int, int]], name: str, v: str) -> None:
    _check(mutate(TEXTS[which], edits), name, v)


@budget(100)
@given(
    st.lists(st.tuples(_KEYS | st.text(max_size=20), _VALUES | st.text(max_size=20)), max_size=4),
    st.sampled_from(NAMES[:2]),
    st.sampled_from(VERSIONS),
)
def test_random_keys_and_values(entries: list[tuple[str, str]], name: str, version: str) -> None:
    text = "".join(f"{k}: {v}\n" for k, v in entries)
    _check(text.encode("utf-8", errors="surrogatepass"), name, version)

"""The engine base class: waiting for background work."""

from __future__ import annotations

from tuner.engine.fake import FakeEngine


class _Pending(FakeEngine):
    """A store that reports states of background work in turn (the last one repeats)."""

    def __init__(self, states: list[tuple[int, int]]) -> None:
        super().__init__()
        self.states = states

    def storage(self) -> dict[str, int]:
        pending, running = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {
            "total_sst_bytes": 0,
            "live_data_bytes": 0,
            "compaction_pending": pending,
            "running_compactions": running,
            "running_flushes": 0,
        }


def test_settle_waits_for_running_work_but_not_for_a_pending_compaction_never_scheduled() -> None:
    # Running compactions are waited for; then pending with nothing running ends the wait
    # after quiet_s as settled (RocksDB reports such a compaction under universal compaction for
    # ever, and never runs it).
    e = _Pending([(1, 1)] * 3 + [(1, 0)])
    assert e.wait_for_background(timeout_s=60, quiet_s=0.1) is True
    assert _Pending([(1, 1), (0, 0)]).wait_for_background(timeout_s=60) is True

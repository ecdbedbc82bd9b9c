"""The public API named in tuner.__all__ resolves, and unknown names fail as usual."""

from __future__ import annotations

import pytest

import tuner


@pytest.mark.parametrize("name", tuner.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(tuner, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = tuner.no_such_thing  # type: ignore[attr-defined]


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert set(tuner.__all__) == {"__version__", *tuner._EXPORTS}

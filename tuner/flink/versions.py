"""The Flink versions tuner supports, defined once: the workload loader, ``check-config``, the
emitted config files and the validation all ask here.

Each supported version maps to a shipped option catalog (``tuner/flink/data/catalog-<id>.json``,
extracted from that release's jars). Flink 2.x keeps the ``state.backend.rocksdb.*`` keys and
their types, so every 2.x release reads 2.3's catalog; an option added during 2.x would pass a
check for an older 2.x release that ignores it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from tuner.errors import TunerError

__all__ = [
    "CATALOG_FOR_MAJOR",
    "CATALOG_IDS",
    "SPELLINGS",
    "SUPPORTED_TEXT",
    "catalog_id",
    "is_supported",
    "major",
]

# Catalog files shipped in tuner/flink/data/, by catalog id.
CATALOG_IDS: Final = ("1.20", "2.3")
CATALOG_FOR_MAJOR: Final[Mapping[int, str]] = MappingProxyType({1: "1.20", 2: "2.3"})
# The short spellings users write; any patch release of them is accepted too ("2.3.0", "1.20.5").
SPELLINGS: Final = ("1.20", "2", "2.x", "2.0", "2.1", "2.2", "2.3")
SUPPORTED_TEXT: Final = "1.20 (1.20.x) and 2.x (2, 2.x, 2.0 to 2.3, with any patch release)"

_V120: Final = re.compile(r"1\.20(?:\.(?:x|[0-9]+))?")
_V2: Final = re.compile(r"2(?:\.x|\.[0-3](?:\.(?:x|[0-9]+))?)?")


def catalog_id(flink_version: str) -> str:
    """The shipped catalog that describes ``flink_version`` ("1.20" or "2.3").

    Raises :class:`TunerError` naming the supported versions for anything else.
    """
    text = flink_version.strip().lower()
    if _V120.fullmatch(text):
        return "1.20"
    if _V2.fullmatch(text):
        return "2.3"
    raise TunerError(f"unsupported Flink version {flink_version!r}: supported are {SUPPORTED_TEXT}")


def is_supported(flink_version: str) -> bool:
    """Whether ``flink_version`` is one tuner has a catalog for."""
    try:
        catalog_id(flink_version)
    except TunerError:
        return False
    return True


def major(flink_version: str) -> int:
    """The major version (1 or 2) of a supported ``flink_version``."""
    return int(catalog_id(flink_version).split(".")[0])

"""What typed evaluation results share: read access by their JSON keys for callers not yet moved to fields.

Every result is a dataclass whose ``to_dict()`` is the ``--json`` document and the run-log payload (the keys are
a contract). New code reads fields; ``result["quality"]`` keeps working for older callers and is read from
``to_dict()``, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class DictAccess:
    """Mapping-style reads of ``to_dict()``: ``r["key"]``, ``r.get("key")``, ``"key" in r``, ``r.items()``."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def keys(self) -> Any:
        return self.to_dict().keys()

    def items(self) -> Any:
        return self.to_dict().items()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

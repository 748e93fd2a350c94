"""Dataset tools: load any supported format into canonical Examples, validate, clean, spot-check, split.

The heavy parts (numpy MinHash, language ID) load only when a function that needs them runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools.data.formats import (
    LoadResult,
    Problem,
    load,
    load_examples,
    read_records,
    write_examples,
    write_hf,
)

if TYPE_CHECKING:  # the lazy names below, typed for callers (imported on first use at run time)
    from tools.data.cleaning import clean
    from tools.data.config import CleanConfig
    from tools.data.inspection import inspect
    from tools.data.profile import detect_profile
    from tools.data.splitting import split

__all__ = ["LoadResult", "Problem", "CleanConfig", "clean", "detect_profile", "inspect", "load", "load_examples",
           "read_records", "split", "write_examples", "write_hf"]


def __getattr__(name: str) -> Any:
    if name == "CleanConfig":
        from tools.data.config import CleanConfig

        return CleanConfig
    if name == "clean":
        from tools.data.cleaning import clean

        return clean
    if name == "split":
        from tools.data.splitting import split

        return split
    if name == "detect_profile":
        from tools.data.profile import detect_profile

        return detect_profile
    if name == "inspect":
        from tools.data.inspection import inspect

        return inspect
    raise AttributeError(name)

"""Dataset tools: load any supported format into canonical Examples, validate, clean, spot-check, split."""

from tools.data.formats import load_examples, write_examples

__all__ = ["load_examples", "write_examples"]

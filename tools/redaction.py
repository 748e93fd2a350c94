"""Secrets are never stored: API keys, and anything that looks like one, are masked before text is written.

Every place that writes text the user did not type as data goes through ``redact``: error messages
(``TunewiseError`` masks its fields when it is made), the bug log, every string the run log stores, and
reports. A server may echo the key it was sent in its error text; that text is masked like any other.

What counts as a secret: the values of the key settings in the environment (``OPENAI_API_KEY``,
``TUNEWISE_CHAT_API_KEY``, ``HF_TOKEN``, ...) and any value given to ``register_secret`` (a key passed on the
command line), plus patterns that look like keys: ``sk-...``, ``Bearer <token>``, ``key=...``/``api_key=...``,
``hf_...``, ``ghp_...``, AWS access key ids.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

MASK = "[REDACTED]"

# Environment variables whose values are secrets (read when redacting, so a key set after import counts).
SECRET_ENV = ("OPENAI_API_KEY", "TUNEWISE_CHAT_API_KEY", "TUNEWISE_OPENAI_API_KEY", "HF_TOKEN",
              "HUGGING_FACE_HUB_TOKEN", "ANTHROPIC_API_KEY", "WANDB_API_KEY")
# Placeholders that local servers accept; masking them would only hide useful context.
NOT_SECRET = frozenset({"", "not-needed", "none", "null", "sk-no-key-required", "ollama", "EMPTY", "dummy"})
MIN_SECRET_LEN = 6

_PATTERNS = [
    # OpenAI-style keys: sk-..., sk-proj-..., also pk-/rk- variants
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"),
    # Authorization headers (a token has a digit in it, so "Bearer authentication" stays)
    re.compile(r"(?i)\b((?:bearer|basic)\s+)(?=[A-Za-z._~+/\-]*\d)[A-Za-z0-9._~+/\-]{8,}=*"),
    # assignments in URLs, configs and messages: api_key=..., access_token: ..., password=..., key=...
    re.compile(r"(?i)\b((?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|secret|password|passwd|token)"
               r"\s*[=:]\s*['\"]?|(?<![\w-])key=['\"]?)[^\s'\"&,;)}\]]{4,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{16,}"),                       # Hugging Face tokens
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),                # GitHub tokens
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),               # AWS access key ids
]

# One cheap scan first: lower-cased text without any of these substrings cannot match a pattern (most text,
# e.g. a model's predictions), so the patterns run only on the rest.
_TRIGGERS = ("sk-", "pk-", "rk-", "bearer", "basic", "key", "token", "secret", "passw", "hf_",
             "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "akia", "asia")

_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears from now on (e.g. a key given as an argument)."""
    if value and value.strip() not in NOT_SECRET and len(value) >= MIN_SECRET_LEN:
        _registered.add(value)


_known_cache: tuple[tuple[Any, ...], list[str]] = ((), [])


def _known_secrets() -> list[str]:
    global _known_cache
    env = tuple(os.environ.get(v) for v in SECRET_ENV)
    key = (*env, len(_registered))
    if key != _known_cache[0]:
        found = {s for s in env if s and s.strip() not in NOT_SECRET and len(s) >= MIN_SECRET_LEN} | _registered
        # longest first, so a key that contains another goes whole
        _known_cache = (key, sorted(found, key=len, reverse=True))
    return _known_cache[1]


def _mask_assignment(m: re.Match[str]) -> str:
    # keep the name (``api_key=``, ``Bearer ``) so the message still says what was there
    return m.group(1) + MASK if m.lastindex else MASK


def redact(text: str) -> str:
    """``text`` with every known secret and everything that looks like a key replaced by ``[REDACTED]``."""
    return _redact(text, _known_secrets())


def masker() -> Callable[[str], str]:
    """``redact`` with the known secrets looked up once, for masking many strings (a batch of rows)."""
    secrets = _known_secrets()
    return lambda text: _redact(text, secrets)


def _redact(text: str, secrets: list[str]) -> str:
    if not text:
        return text
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    low = text.lower()
    if any(t in low for t in _TRIGGERS):
        for pattern in _PATTERNS:
            text = pattern.sub(_mask_assignment, text)
    return text


def redact_value(value: Any) -> Any:
    """``redact`` applied to every string inside ``value`` (dicts, lists and tuples are rebuilt)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value

"""Variants: things that answer prompts, compared on the same rows.

A *variant* is a tuned run (``run:ID``), a base model (``base``, a model folder, ``smollm2-135m-instruct``) or a
prompt configuration (``prompt:RUN_ID`` for a logged prompt baseline, ``prompt:FILE.json`` for
``{"system": ..., "few_shot": [{"input", "output"}], "model": ...}``). Prompt evaluation's Step 2 variants
(5 shots, chain of thought, ...) are the same class.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import InputError, RunNotFoundError
from tools.models import EMBEDDED_NAME, ModelSpec
from tools.types import Example

Chat = list[dict[str, str]]
Shot = tuple[str, str]


def build_messages(system: str | None, shots: Sequence[Shot | Example], example: Example) -> Chat:
    """System message, then each shot as a (user, assistant) pair, then the example's own turns."""
    msgs: Chat = [{"role": "system", "content": system}] if system else []
    for s in shots:
        q, a = (s.input_text, s.output_text) if isinstance(s, Example) else s
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    msgs += [m.to_dict() for m in example.prompt_messages if m.role != "system"]
    return msgs


@dataclass
class Variant:
    """Something that answers prompts: a model plus, for a prompt configuration, the system message and the
    demonstrations put before each input.

    ``kind``: ``tuned`` and ``base`` send each row's own messages; ``prompt`` replaces the system message and
    adds the demonstrations. ``max_new_tokens`` and ``chain_of_thought`` are set by prompt evaluation's Step 2.
    """

    label: str
    kind: str = "prompt"  # "tuned" | "base" | "prompt"
    spec: ModelSpec | None = None
    system: str | None = None
    few_shot: list[Shot] = field(default_factory=list)
    source_run: str | None = None
    description: str = ""
    max_new_tokens: int | None = None
    chain_of_thought: bool = False

    @property
    def name(self) -> str:
        return self.label

    def messages(self, example: Example) -> Chat:
        """The chat this variant sends for one row."""
        if self.kind != "prompt":
            return [m.to_dict() for m in example.prompt_messages]
        return build_messages(self.system, self.few_shot, example)

    def prompts(self, examples: Sequence[Example]) -> list[Chat]:
        return [self.messages(ex) for ex in examples]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "model": self.spec.label if self.spec else None,
                "system": self.system, "few_shot": [{"input": q, "output": a} for q, a in self.few_shot],
                "source_run": self.source_run}


def _base_of(spec: ModelSpec) -> ModelSpec:
    """The model under a tuned run's adapter (for a full fine-tune: the model named in the run)."""
    from tools import models

    if spec.adapter is not None:
        return ModelSpec("local" if spec.path else "embedded", spec.name, path=spec.path)
    if spec.kind == "run":
        from tools.runlog import RunLog

        run = RunLog().find_run(spec.run_id or "")
        cfg = run.get("config") or {}
        return models.resolve(cfg.get("model") or cfg.get("base_model") or EMBEDDED_NAME)
    return spec


def tuned_variant(run_id: str) -> Variant:
    from tools import models

    spec = models.resolve_run(run_id.removeprefix("run:"))
    return Variant(f"run:{spec.run_id}", "tuned", spec, source_run=spec.run_id)


def base_variant(run_id: str | None = None, model: str | None = None) -> Variant:
    from tools import models

    if model:
        spec = models.resolve(model)
    elif run_id:
        spec = _base_of(models.resolve_run(run_id.removeprefix("run:")))
    else:
        spec = models.resolve(None)
    return Variant(f"base:{spec.label}", "base", spec)


def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) not in (None, "", []):
            return d[k]
    return None


def _shots(raw: Any) -> list[tuple[str, str]]:
    out = []
    for s in raw or []:
        if isinstance(s, dict):
            q = _first(s, "input", "prompt", "user", "question", "text")
            a = _first(s, "output", "completion", "assistant", "answer", "label")
            if q is not None and a is not None:
                out.append((str(q), str(a)))
        elif isinstance(s, list | tuple) and len(s) == 2:
            out.append((str(s[0]), str(s[1])))
    return out


def _prompt_from_dict(d: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]] | None:
    system = _first(d, "system", "system_prompt", "instructions", "prompt")
    shots = _shots(_first(d, "few_shot", "examples", "shots", "demonstrations"))
    if system is None and not shots:
        return None
    return (str(system) if system is not None else None, shots)


def prompt_baseline_run(*, model: str | None = None) -> dict[str, Any] | None:
    """The newest completed prompt-baseline run in the run log (kind ``prompt_eval``), or None."""
    from tools.runlog import RunLog

    rows = RunLog().query("SELECT run_id FROM runs WHERE kind = 'prompt_eval' AND status = 'completed' "
                          "ORDER BY started_at DESC")
    for r in rows:
        run = RunLog().get_run(r["run_id"])
        if run and (model is None or run.get("model") in (None, model)):
            return run
    return None


def _best_prompt(run: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]] | None:
    """The best variant's system prompt and demonstrations, read tolerantly from a prompt_eval run."""
    summary = run.get("summary") or {}
    config = run.get("config") or {}
    variants = summary.get("variants") or config.get("variants") or []
    best = summary.get("best")
    if isinstance(best, dict):
        found = _prompt_from_dict(best)
        if found:
            return found
        best = _first(best, "name", "variant", "id")
    for v in variants if isinstance(variants, list) else []:
        if isinstance(v, dict) and (best is None or _first(v, "name", "variant", "id") == best):
            found = _prompt_from_dict(v)
            if found:
                return found
    return _prompt_from_dict(config)


def prompt_variant(ref: str, *, model: str | None = None) -> Variant:
    """``prompt:RUN_ID`` (a logged prompt baseline) or ``prompt:FILE`` (JSON with system/few_shot/model)."""
    from tools import models
    from tools.runlog import RunLog

    ref = ref.removeprefix("prompt:")
    p = Path(ref).expanduser()
    if p.is_file():
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as e:
            raise InputError(f"not valid JSON: {e}", where=str(p)) from e
        found = _prompt_from_dict(d) if isinstance(d, dict) else None
        if not found:
            raise InputError("a prompt configuration needs 'system' and/or 'few_shot'", where=str(p),
                             fix='write {"system": "...", "few_shot": [{"input": "...", "output": "..."}]}')
        spec = models.resolve(d.get("model") or model)
        return Variant(f"prompt:{p.name}", "prompt", spec, system=found[0], few_shot=found[1])
    run = RunLog().find_run(ref)
    found = _best_prompt(run)
    if not found:
        raise InputError(f"prompt run {run['run_id']} does not record its prompt", where="runs.summary",
                         fix="give the prompt as a JSON file: prompt:FILE.json")
    # The config holds the model spec as the user gave it (a path resolves anywhere); runs.model is a display
    # name ("tiny" for a folder called tiny) and only the fallback.
    spec = models.resolve(model or (run.get("config") or {}).get("model") or run.get("model"))
    return Variant(f"prompt:{run['run_id']}", "prompt", spec, system=found[0], few_shot=found[1],
                   source_run=run["run_id"])


def parse_variant(text: str, *, run_id: str | None = None) -> Variant:
    """A/B spec: ``run:ID`` | a train run id | ``base`` / ``base:MODEL`` | ``prompt:RUN_ID|FILE`` | a model."""
    from tools.runlog import RunLog

    t = text.strip()
    if t.startswith("run:"):
        return tuned_variant(t)
    if t == "base":
        return base_variant(run_id)
    if t.startswith("base:"):
        return base_variant(model=t.removeprefix("base:"))
    if t.startswith("prompt:"):
        return prompt_variant(t)
    if not Path(t).exists() and t.lower() not in {EMBEDDED_NAME, "smollm2", "default", "embedded"} \
            and not t.startswith("openai:"):
        try:
            return tuned_variant(RunLog().find_run(t)["run_id"])  # a run id or a unique prefix of one
        except RunNotFoundError:
            pass
    return base_variant(model=t)


def pair_variants(a: str, b: str) -> tuple[Variant, Variant]:
    """Parse two A/B specs; a bare ``base`` on one side means the base model of the run on the other side."""
    va = None if a.strip() == "base" else parse_variant(a)
    vb = None if b.strip() == "base" else parse_variant(b)
    run = (vb.source_run if vb else None) or (va.source_run if va else None)
    return va or base_variant(run), vb or base_variant(run)


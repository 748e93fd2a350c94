"""TrainConfig: every training setting, with its help text, serialised verbatim into the run log.

This dataclass is the one place a training setting lives. Each field carries its own help text and CLI
option name in its metadata (as peft's and litgpt's configs do): ``tunewise train``'s options and their
``--help`` are generated from it (``cli_fields``), the advisor's plan becomes a TrainConfig through
``TrainConfig.from_plan``, and the run log stores ``to_dict()``.

``None`` means "let tunewise choose": ``resolve_defaults`` fills those fields from the knowledge tables
(learning rate by model size and method, epochs and weight decay by data size, effective batch, warmup,
early stopping) and records the ids of the rules it used.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

Method = Literal["lora", "qlora", "full"]
METHODS: tuple[Method, ...] = ("lora", "qlora", "full")


def _target_modules(text: str) -> str | list[str]:
    """``all-linear`` stays a string; anything else is a comma-separated list of module names."""
    if text in ("all-linear", "all_linear"):
        return "all-linear"
    return [t.strip() for t in text.split(",") if t.strip()]


def _f(default: Any, help: str, *, cli: str | None = None, parse: Callable[[str], Any] | None = None,
       cli_type: type | None = None, hidden: bool = False) -> Any:
    """A field with its help text. ``cli`` is the option name when it is not ``--field-name``; ``parse`` turns the
    option's text into the field's value (with ``cli_type`` the type the option is read as); ``hidden`` keeps
    it off the command line."""
    meta: dict[str, Any] = {"help": help}
    if cli:
        meta["cli"] = cli
    if parse:
        meta["parse"] = parse
    if cli_type:
        meta["cli_type"] = cli_type
    if hidden:
        meta["hidden"] = True
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """One training run. Fields left at ``None`` are filled from the knowledge tables (see ``rule_ids``)."""

    train: str = _f("", "Training data (chat JSONL, prompt/completion JSONL, CSV: any format tools.data reads).")
    val: str | None = _f(None, "Validation data; without it 10% of --train is held out (seeded).")
    method: Method = _f("lora", "lora (adapters on a frozen base), qlora (adapters on a 4-bit NF4 base) or full.")
    model: str = _f("smollm2-135m-instruct", "Base model: the embedded name, a local HF folder, or run:RUN_ID.")
    # -- optimisation
    learning_rate: float | None = _f(None, "Peak learning rate; default from hp.lr.<method>.<size>.", cli="--lr")
    num_train_epochs: float | None = _f(None, "Passes over the data; default from hp.epochs.* by data size.",
                                        cli="--epochs")
    max_steps: int = _f(-1, "Stop after this many optimizer steps (overrides epochs when > 0).")
    per_device_train_batch_size: int = _f(8, "Sequences per forward pass.", cli="--batch-size")
    gradient_accumulation_steps: int | None = _f(None, "Forward passes per optimizer step; default reaches the "
                                                       "effective batch of hp.batch.effective (capped for small "
                                                       "data).", cli="--grad-accum")
    weight_decay: float | None = _f(None, "AdamW weight decay; default from hp.wd.* by data size.")
    warmup_ratio: float = _f(0.1, "Share of steps spent warming the learning rate up (hp.warmup).")
    lr_scheduler_type: str = _f("linear", "Learning-rate schedule after warm-up (hp.lr.schedule).",
                                cli="--lr-scheduler")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    seed: int = _f(0, "Seed for initialisation, data order and the held-out split.")
    # -- LoRA
    lora_r: int = _f(8, "LoRA rank (hp.lora.rank.start).")
    lora_alpha: int | None = _f(None, "LoRA scaling numerator; default 2 x r (hp.lora.alpha).")
    lora_dropout: float = _f(0.05, "Dropout on the LoRA input.")
    target_modules: str | list[str] = _f("all-linear", "Layers to adapt: 'all-linear' or comma-separated module "
                                                       "names.", parse=_target_modules, cli_type=str)
    # -- data and efficiency
    max_seq_length: int = _f(512, "Longest sequence in tokens; longer prompts are cut from the left.")
    packing: bool = _f(False, "Pack several examples per row (no attention across examples) instead of padding.")
    group_by_length: bool = _f(True, "Batch examples of similar length together to waste less padding.")
    shared_prefix: bool = _f(True, "Encode the tokens every example of a batch starts with (chat header, system "
                                   "prompt) once per batch; same loss and gradients, less compute.")
    bf16: bool | None = _f(None, "bf16 compute; default on where the hardware has it (CUDA bf16, AVX512-BF16).")
    gradient_checkpointing: bool | None = _f(None, "Recompute activations in backward; default on only when the "
                                                   "memory estimate says the run would not fit.")
    threads: int | None = _f(None, "torch CPU threads per process; default from the cores that are free now "
                                   "(affinity minus load; env TUNEWISE_THREADS), recorded with the run.")
    limit: int | None = _f(None, "Use only the first N training rows (quick runs).")
    # -- evaluation, checkpoints, stopping
    eval_steps: int | None = _f(None, "Evaluate (and checkpoint) every N optimizer steps; default ~10 per run.")
    early_stopping_patience: int = _f(3, "Stop after this many evaluations without improvement "
                                         "(hp.early_stopping).", cli="--patience")
    early_stopping_threshold: float = _f(0.01, "Smallest eval-loss improvement that counts (hp.early_stopping).")
    save_total_limit: int = _f(2, "Checkpoints kept on disk (the best one is always kept).")
    logging_steps: int = _f(1, "Log loss, learning rate and gradient norm every N steps.")
    # -- outputs and faults
    save_merged: bool = _f(False, "Also save the merged model (adapter folded into the base) as run_dir/merged.")
    auto_retry: bool = _f(False, "After an out-of-memory failure, retry once per fix with the cheaper setting.")
    run_id: str | None = _f(None, "Run id; generated when absent.")
    rule_ids: list[str] = _f([], "Knowledge rules behind the defaults (filled in by resolve_defaults).", hidden=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """A config from a stored dict; unknown keys (from newer or older versions) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def from_plan(cls, plan: Mapping[str, Any] | None, **fields_: Any) -> TrainConfig:
        """The advisor's plan as a TrainConfig; ``fields_`` (data files, model, ...) win where not None."""
        values = plan_fields(plan) | {k: v for k, v in fields_.items() if v is not None}
        return cls.from_dict({k: _typed(k, v) for k, v in values.items()})


# The advisor's plan (agent/graph.py): where each TrainConfig field sits in it. ``short_run`` (a CPU-sized run)
# wins over ``hyperparameters`` where both name a value.
_PLAN_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "method": (("method",), ("hyperparameters", "method")),
    "learning_rate": (("short_run", "learning_rate"), ("hyperparameters", "learning_rate")),
    "num_train_epochs": (("hyperparameters", "epochs"),),
    "per_device_train_batch_size": (("short_run", "per_device_batch_size"),
                                    ("hyperparameters", "per_device_batch_size")),
    "gradient_accumulation_steps": (("short_run", "gradient_accumulation_steps"),
                                    ("hyperparameters", "gradient_accumulation_steps")),
    "weight_decay": (("hyperparameters", "weight_decay"),),
    "warmup_ratio": (("hyperparameters", "warmup_ratio"),),
    "lr_scheduler_type": (("hyperparameters", "lr_scheduler"),),
    "lora_r": (("hyperparameters", "lora", "r"),),
    "lora_alpha": (("hyperparameters", "lora", "lora_alpha"),),
    "lora_dropout": (("hyperparameters", "lora", "lora_dropout"),),
    "target_modules": (("hyperparameters", "lora", "target_modules"),),
    "early_stopping_patience": (("hyperparameters", "early_stopping", "patience"),),
    "early_stopping_threshold": (("hyperparameters", "early_stopping", "threshold"),),
    "max_steps": (("short_run", "max_steps"),),
    "eval_steps": (("short_run", "eval_steps"),),
}


def _at(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    here: Any = doc
    for key in path:
        if not isinstance(here, Mapping):
            return None
        here = here.get(key)
    return here


def _typed(name: str, value: Any) -> Any:
    """A plan's value as the field's type: answers typed in a form arrive as text ("20" steps)."""
    if not isinstance(value, str):
        return value
    kind = next((cf.type for cf in cli_fields() if cf.name == name), str)
    if kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            from tools.errors import InputError

            raise InputError(f"{name} must be a number, not {value!r}", where=f"plan:{name}",
                             fix="give a number") from None
    if kind is bool:
        return value.strip().lower() in ("1", "true", "yes", "on")
    return value


def plan_fields(plan: Mapping[str, Any] | None) -> dict[str, Any]:
    """TrainConfig fields named by a plan: the advisor's plan (``hyperparameters``, ``short_run``), possibly under
    a ``plan`` key, or a flat ``train_config``/``config``/``training`` dict of TrainConfig names. Unknown keys,
    ``run_id`` and ``rule_ids`` are left out; so are values that are None."""
    if not plan:
        return {}
    doc: Mapping[str, Any] = plan["plan"] if isinstance(plan.get("plan"), Mapping) else plan
    out: dict[str, Any] = {}
    if isinstance(doc.get("hyperparameters"), Mapping):
        for name, paths in _PLAN_PATHS.items():
            value = next((v for v in (_at(doc, p) for p in paths) if v is not None), None)
            if isinstance(value, Mapping):  # a method given as {"method": ..., "why": ...}
                value = value.get("method") or value.get("name")
            if value is not None:
                out[name] = value
    for key in ("train_config", "config", "training"):
        if isinstance(doc.get(key), Mapping):
            out.update(doc[key])
            break
    known = {f.name for f in fields(TrainConfig)} - {"run_id", "rule_ids"}
    return {k: v for k, v in out.items() if k in known and v is not None}


# ---------------------------------------------------------------------------------------------- the CLI's view

@dataclass(frozen=True)
class CliField:
    """How one TrainConfig field appears on the command line (the CLI builds its options from these)."""

    name: str  # the field
    option: str  # "--lr"
    type: type  # what the option's text is read as: str, int, float or bool (a --x/--no-x flag)
    help: str
    parse: Callable[[Any], Any] | None = None

    @property
    def is_flag(self) -> bool:
        return self.type is bool

    def value(self, raw: Any) -> Any:
        """The field's value from the option's (None: not given)."""
        return None if raw is None or self.parse is None else self.parse(raw)

    def args(self, value: Any) -> list[str]:
        """The command-line words that give ``value`` (to rebuild a command, e.g. under ``accelerate launch``)."""
        if value is None:
            return []
        if self.is_flag:
            return [self.option if value else "--no-" + self.option[2:]]
        if isinstance(value, list | tuple):
            value = ",".join(map(str, value))
        return [self.option, str(value)]


def _option_type(annotation: Any) -> type:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _option_type(args[0])
    if typing.get_origin(annotation) is Literal:
        return type(args[0])
    for plain in (str, int, float, bool):
        if annotation is plain:
            return plain
    raise TypeError(f"no command-line type for {annotation!r}: give the field a cli_type")


def cli_fields() -> list[CliField]:
    """Every TrainConfig field the command line sets, in declaration order."""
    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in fields(TrainConfig):
        if f.metadata.get("hidden"):
            continue
        out.append(CliField(f.name, f.metadata.get("cli") or "--" + f.name.replace("_", "-"),
                            f.metadata.get("cli_type") or _option_type(hints[f.name]), f.metadata.get("help", ""),
                            f.metadata.get("parse")))
    return out


def cli_values(options: Mapping[str, Any]) -> dict[str, Any]:
    """TrainConfig fields from parsed options keyed by field name; options not given (None) are left out."""
    out: dict[str, Any] = {}
    for cf in cli_fields():
        raw = options.get(cf.name)
        if raw is not None:
            out[cf.name] = cf.value(raw) if cf.parse else raw
    return out


def cli_args(values: Mapping[str, Any]) -> list[str]:
    """The options that set ``values`` (TrainConfig field -> value), in declaration order."""
    out: list[str] = []
    for cf in cli_fields():
        out += cf.args(values.get(cf.name))
    return out


# ---------------------------------------------------------------------------------------------- defaults

def resolve_defaults(cfg: TrainConfig, *, n_train: int, params_b: float | None) -> TrainConfig:
    """Fill every ``None`` field from the knowledge tables; record the rules used in ``rule_ids``."""
    from knowledge import lookup

    if cfg.method not in METHODS:
        from tools.errors import InputError

        raise InputError(f"unknown method {cfg.method!r}", where="--method", fix="use lora, qlora or full")
    ids: list[str] = list(cfg.rule_ids)
    upd: dict[str, Any] = {}
    if cfg.learning_rate is None:
        lr = lookup.lr_for(params_b or 0.135, cfg.method)
        upd["learning_rate"] = lr.recommended
        ids += lr.rule_ids
    if cfg.num_train_epochs is None:
        ep = lookup.epochs_for(n_train)
        upd["num_train_epochs"] = float(ep.recommended)
        ids.append(ep.id)
    if cfg.weight_decay is None:
        wd = lookup.weight_decay_for(n_train)
        upd["weight_decay"] = wd.value
        ids.append(wd.id)
    if cfg.gradient_accumulation_steps is None:
        target = lookup.load().hyperparameters.effective_batch
        acc = max(1, math.ceil(target.target / cfg.per_device_train_batch_size))
        # A small data set with a large effective batch leaves only a handful of optimizer steps per epoch.
        while acc > 1 and n_train / (cfg.per_device_train_batch_size * acc) < 10:
            acc //= 2
        upd["gradient_accumulation_steps"] = acc
        ids.append(target.id)
    if cfg.lora_alpha is None:
        upd["lora_alpha"] = 2 * cfg.lora_r
        ids.append("hp.lora.alpha")
    if cfg.method != "full" and cfg.target_modules == "all-linear":
        ids.append("hp.lora.target_modules")
    ids += ["hp.warmup", "hp.lr.schedule", "hp.early_stopping"]
    upd["rule_ids"] = list(dict.fromkeys(ids))
    return replace(cfg, **upd)

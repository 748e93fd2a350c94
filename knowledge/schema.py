"""Pydantic models for the knowledge files: one model per table, one top-level model per YAML file.

Every citable row derives from ``Row`` (``id``, ``text``, ``source``). Models forbid unknown keys so a
typo in the YAML fails validation instead of silently dropping a value.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")]
Method = Literal["full", "lora", "qlora"]
TaskId = Literal[
    "classification",
    "extraction",
    "formatting",
    "tone",
    "multi_step_reasoning",
    "domain_language",
    "complex_behavior",
    "new_capability",
    "other",
]
GoalId = Literal[
    "quality",
    "consistency",
    "latency",
    "new_capability",
    "tone_style",
    "output_format",
    "recent_information",
    "quick_experiment",
]
SizeKey = Literal["1b", "7b", "13b", "70b"]
OutputKind = Literal["label", "structured", "code", "reasoning"]
Params = dict[str, Any]

TASK_IDS: tuple[str, ...] = get_args(TaskId)
GOAL_IDS: tuple[str, ...] = get_args(GoalId)
ISSUE_NAMES = ("overfitting", "catastrophic_forgetting", "poor_quality", "slow_training", "out_of_memory")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Row(_Model):
    """A citable rule: a stable id, one sentence, and where it came from."""

    id: RuleId
    text: str = Field(min_length=1)
    source: str | None = None

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return (self.id,)


class Correction(_Model):
    """Where tunewise departs from the seed: the seed's value, ours, and the reason."""

    seed: Any
    choice: Any
    why: str = Field(min_length=1)
    evidence: list[str] = []


class CorrectionRow(Row, Correction):
    """A citable correction."""


class Interval(_Model):
    """A numeric range; ``min`` inclusive and ``max`` exclusive unless flagged, ``max: null`` is unbounded."""

    min: float
    max: float | None
    min_inclusive: bool = True
    max_inclusive: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.max is not None and self.max <= self.min:
            raise ValueError(f"max ({self.max}) must be greater than min ({self.min})")
        return self

    def contains(self, x: float) -> bool:
        above = x >= self.min if self.min_inclusive else x > self.min
        if self.max is None:
            return above
        below = x <= self.max if self.max_inclusive else x < self.max
        return above and below


class Band(Row, Interval):
    """A citable interval row."""


B = TypeVar("B", bound=Band)


def check_tiling(bands: list[B]) -> list[B]:
    """Fail unless consecutive bands meet exactly, with each edge owned by exactly one band."""
    if not bands:
        raise ValueError("at least one band is needed")
    for a, b in zip(bands, bands[1:], strict=False):
        if a.max != b.min:
            raise ValueError(f"'{a.id}' ends at {a.max:g} but '{b.id}' starts at {b.min:g}")
        if a.max_inclusive == b.min_inclusive:
            raise ValueError(
                f"the edge {a.max:g} between '{a.id}' and '{b.id}' must belong to exactly one band"
            )
    return bands


# ---------------------------------------------------------------- rules.yaml


class QualityBar(Row):
    default: float = Field(gt=0, le=1)
    user_may_override: bool


class Action(Row):
    params: Params = {}


class StepExit(Row):
    compare: Literal[">="]
    outcome: str


class Step(Row):
    order: int
    name: str
    actions: list[Action]
    exit: StepExit | None


class FineTuneWhen(Row):
    evidence: str | None = None
    min_examples: int | None = None
    goal: GoalId | None = None


class DontFineTune(Row):
    goal: GoalId | None = None
    max_examples: int | None = None
    alternative: Literal["system_message", "format_spec_in_prompt", "prompts", "rag"]


class Goal(Row):
    goal: GoalId
    supports_fine_tuning: bool
    rule: RuleId


class TaskRule(Row):
    task: TaskId
    complexity: Literal["simple", "complex", "unknown"]
    recommendation: Literal["prompts", "consider_fine_tuning", "decide_by_other_criteria"]
    min_edge_cases: int | None = None
    output_kind: Literal["label", "structured", "code", "short_answer", "reasoning", "text"] | None = None
    """The task profile's kind this answer implies (it outranks the kind read from the rows), when it implies one."""


class SizeBand(Band):
    recommendation: Literal[
        "prompts_only", "prompts_preferred", "fine_tuning_viable_if_prompts_fail", "fine_tuning_effective"
    ]


class CostFacts(Row):
    approach: Literal["prompt_engineering", "fine_tuning"]
    cost_usd_min: float
    cost_usd_max: float
    cost_open_ended: bool = False
    cost_note: str
    time: str
    maintenance: Literal["easy", "hard"]


class RoiInput(_Model):
    name: str
    unit: str
    text: str


class RoiWorthIt(Row):
    min_quality_improvement: float


class RoiExample(Row):
    prompt_dev_hours: float
    hourly_rate: float
    data_prep_hours: float
    training_cost: float
    prompt_cost: float
    fine_tune_cost: float
    ratio: float
    ratio_stated: float

    @model_validator(mode="after")
    def _arithmetic(self) -> RoiExample:
        # The example is the formula's test case: keep the stored results honest.
        if self.prompt_dev_hours * self.hourly_rate != self.prompt_cost:
            raise ValueError("prompt_cost must equal prompt_dev_hours * hourly_rate")
        if self.data_prep_hours * self.hourly_rate + self.training_cost != self.fine_tune_cost:
            raise ValueError("fine_tune_cost must equal data_prep_hours * hourly_rate + training_cost")
        if not math.isclose(self.fine_tune_cost / self.prompt_cost, self.ratio):
            raise ValueError("ratio must equal fine_tune_cost / prompt_cost")
        return self


class Roi(Row):
    inputs: list[RoiInput]
    formulas: dict[str, str]
    worth_it: RoiWorthIt
    example: RoiExample


class PerfBand(Band):
    recommendation: str


class ConsistencyRule(Row):
    level: Literal["variable", "high", "perfect"]
    recommendation: Literal["prompts", "prompts_or_fine_tuning", "fine_tuning_with_validation"]
    temperature: str | None


class MethodWhen(Row):
    min_examples: int | None = None
    min_gpus: int | None = None
    max_gpu_memory_gb: float | None = None


class MethodInfo(Row):
    method: Method
    pros: list[str]
    cons: list[str]
    when_to_use: list[MethodWhen]


class MethodSelection(Row):
    method: Method
    max_gpu_memory_gb: float | None = None
    min_examples: int | None = None
    min_gpus: int | None = None


class RulesFile(_Model):
    version: int
    quality_bar: QualityBar
    common_mistakes: list[Row]
    decision_tree: list[Step]
    fine_tune_when: list[FineTuneWhen]
    dont_fine_tune_for: list[DontFineTune]
    goals: list[Goal]
    task_complexity: list[TaskRule]
    dataset_size_bands: list[SizeBand]
    cost_benefit: list[CostFacts]
    roi: Roi
    quality_bands: list[PerfBand]
    latency_bands: list[PerfBand]
    consistency_levels: list[ConsistencyRule]
    methods: list[MethodInfo]
    method_selection: list[MethodSelection]

    @field_validator("dataset_size_bands", "quality_bands", "latency_bands")
    @classmethod
    def _tiled(cls, bands: list[B]) -> list[B]:
        return check_tiling(bands)

    @field_validator("task_complexity")
    @classmethod
    def _all_tasks(cls, rows: list[TaskRule]) -> list[TaskRule]:
        if sorted(t.task for t in rows) != sorted(TASK_IDS):
            raise ValueError(f"must list each task id once: {sorted(TASK_IDS)}")
        return rows

    @field_validator("goals")
    @classmethod
    def _all_goals(cls, rows: list[Goal]) -> list[Goal]:
        if sorted(g.goal for g in rows) != sorted(GOAL_IDS):
            raise ValueError(f"must list each goal id once: {sorted(GOAL_IDS)}")
        return rows

    @field_validator("decision_tree")
    @classmethod
    def _ordered_steps(cls, steps: list[Step]) -> list[Step]:
        if [s.order for s in steps] != list(range(1, len(steps) + 1)):
            raise ValueError("steps must be ordered 1..n")
        return steps


# ---------------------------------------------------------------- hyperparameters.yaml


class PretrainingLr(Row):
    min: float
    max: float
    finetune_divisor_min: float
    finetune_divisor_max: float


class LrRule(Row):
    divisor: float


class LrBySize(Row):
    size: SizeKey
    params_b: float
    applies_to: Interval
    pretrain_lr: float
    finetune_lr_min: float
    finetune_lr_max: float

    @model_validator(mode="after")
    def _ordered(self) -> LrBySize:
        if not self.finetune_lr_min <= self.finetune_lr_max:
            raise ValueError("finetune_lr_min must not exceed finetune_lr_max")
        return self


class LrStart(Row):
    start: float
    conservative: float


class LrByMethod(Row):
    method: Method
    size: SizeKey
    lr_min: float
    lr_max: float
    recommended: float

    @model_validator(mode="after")
    def _inside(self) -> LrByMethod:
        if not self.lr_min <= self.recommended <= self.lr_max:
            raise ValueError("recommended must lie within lr_min..lr_max")
        return self


class LrSchedule(Row):
    scheduler: str


class LrWarning(Row):
    direction: Literal["too_high", "too_low"]
    threshold: float
    applies_to_methods: list[Method]
    signs: list[str]


class EpochBand(Band):
    min_epochs: int
    max_epochs: int
    recommended: int


class EpochsRule(Row):
    default: int


class BatchRow(Row):
    gpu_memory_gb: float
    min_batch: int
    max_batch: int


class BatchTable(_Model):
    model_params_b: float
    rows: list[BatchRow]

    @field_validator("rows")
    @classmethod
    def _ascending(cls, rows: list[BatchRow]) -> list[BatchRow]:
        mems = [r.gpu_memory_gb for r in rows]
        if mems != sorted(mems) or not rows:
            raise ValueError("rows must be non-empty and sorted by gpu_memory_gb")
        return rows


class EffectiveBatch(Row):
    min: int
    max: int
    target: int
    example_per_device: int
    example_accumulation: int


class WeightDecay(Row):
    kind: Literal["standard", "strong", "light"]
    value: float
    applies_to: Interval


class Warmup(Row):
    min_ratio: float
    max_ratio: float
    default_ratio: float
    seed_example_steps: int
    longer_for_larger_models: bool
    why: str


class EarlyStopping(Row):
    patience: int
    threshold: float
    metric: str
    greater_is_better: bool
    load_best_model_at_end: bool


class TrainingDefaults(Row):
    eval_steps: int
    save_steps: int
    logging_steps: int
    mixed_precision: bool
    gradient_checkpointing: bool
    learning_rate: float
    num_train_epochs: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    weight_decay: float
    warmup_steps: int


class LoraSeedExample(_Model):
    r: int
    lora_alpha: int
    target_modules: list[str]
    trainable_params_stated: int
    trainable_percent_stated: float


class LoraConfigRow(Row):
    r: int
    lora_alpha: int
    alpha_ratio: float
    lora_dropout: float
    bias: Literal["none", "all", "lora_only"]
    task_type: str
    target_modules: str | list[str]
    seed_example: LoraSeedExample
    corrections: list[CorrectionRow]
    notes: list[CorrectionRow]

    @model_validator(mode="after")
    def _alpha(self) -> LoraConfigRow:
        if self.lora_alpha != self.alpha_ratio * self.r:
            raise ValueError("lora_alpha must equal alpha_ratio * r")
        return self


class RankRow(Row):
    rank: int
    capacity: str
    use_for: str
    open_ended: bool = False


class RankRule(Row):
    start: int
    typical_min: int
    typical_max: int


class MemoryRow(Row):
    method: Method
    gb: dict[SizeKey, float]


class FullFtBreakdown(Row):
    params_b: float
    bytes_per_param: int
    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    optimizer_multiple_of_weights: float
    activations_gb: float
    activations_batch_size: int
    total_gb: float

    @model_validator(mode="after")
    def _sums(self) -> FullFtBreakdown:
        if self.params_b * self.bytes_per_param != self.weights_gb:
            raise ValueError("weights_gb must equal params_b * bytes_per_param")
        if self.weights_gb * self.optimizer_multiple_of_weights != self.optimizer_gb:
            raise ValueError("optimizer_gb must equal weights_gb * optimizer_multiple_of_weights")
        parts = self.weights_gb + self.gradients_gb + self.optimizer_gb + self.activations_gb
        if parts != self.total_gb:
            raise ValueError(f"the parts add up to {parts} GB, not total_gb {self.total_gb}")
        return self


class LoraParamExample(Row):
    d: int
    k: int
    r: int
    full_params: int
    full_params_stated: str
    a_params: int
    b_params: int
    lora_params: int
    lora_params_stated: str
    percent_stated: float

    @model_validator(mode="after")
    def _arithmetic(self) -> LoraParamExample:
        ok = (
            self.d * self.k == self.full_params
            and self.d * self.r == self.a_params
            and self.r * self.k == self.b_params
            and self.a_params + self.b_params == self.lora_params
        )
        if not ok:
            raise ValueError("d*k, d*r, r*k and their sum must match the stored parameter counts")
        return self


class QuickRef(Row):
    task: str
    method: Literal["prompts", "full", "lora", "qlora"]
    min_examples: int | None
    max_examples: int | None
    seed_lr: float | None
    lr: float | None
    min_epochs: int | None
    max_epochs: int | None


class DefaultRecommendation(Row):
    first: Literal["prompts"]
    method: Method
    seed_lr: float
    lr: float
    epochs: int


class EfficiencyClaim(Row):
    factor: float
    quantity: str
    subject: str
    baseline: str


class HyperparametersFile(_Model):
    version: int
    pretraining_lr: PretrainingLr
    lr_rule: LrRule
    learning_rate_by_model_size: list[LrBySize]
    lr_start: LrStart
    lr_method_correction: CorrectionRow
    learning_rate_by_method: list[LrByMethod]
    lr_schedule: LrSchedule
    lr_warning_signs: list[LrWarning]
    epochs_by_dataset_size: list[EpochBand]
    epochs_rule: EpochsRule
    batch_by_gpu_memory: BatchTable
    effective_batch: EffectiveBatch
    weight_decay: list[WeightDecay]
    weight_decay_mapping: CorrectionRow
    warmup: Warmup
    early_stopping: EarlyStopping
    training_defaults: TrainingDefaults
    lora_config: LoraConfigRow
    rank_selection: list[RankRow]
    rank_rule: RankRule
    memory_by_method: list[MemoryRow]
    full_ft_memory_7b: FullFtBreakdown
    lora_param_example: LoraParamExample
    quick_reference: list[QuickRef]
    default_recommendation: DefaultRecommendation
    efficiency_claims: list[EfficiencyClaim]

    @field_validator("epochs_by_dataset_size")
    @classmethod
    def _tiled(cls, bands: list[B]) -> list[B]:
        return check_tiling(bands)

    @model_validator(mode="after")
    def _complete(self) -> HyperparametersFile:
        sizes = {r.size for r in self.learning_rate_by_model_size}
        pairs = {(r.method, r.size) for r in self.learning_rate_by_method}
        missing = [
            f"{m}/{s}" for m in ("full", "lora", "qlora") for s in sorted(sizes) if (m, s) not in pairs
        ]
        if missing:
            raise ValueError(f"learning_rate_by_method lacks rows for: {', '.join(missing)}")
        return self


# ---------------------------------------------------------------- data.yaml


class QualityPrinciple(Row):
    example_raw_rows: int
    example_clean_rows: int


class Sources(_Model):
    good: list[Row]
    bad: list[Row]


class LabelKind(_Model):
    max_chars: int
    max_distinct_values: int
    max_distinct_fraction: float


class StructuredKind(_Model):
    formats: list[str]


class CodeKind(_Model):
    markers: list[str]


class OutputKinds(Row):
    label: LabelKind
    structured: StructuredKind
    code: CodeKind


class FilterBase(Row):
    order: int
    fields: list[Literal["input", "output"]]
    correction: Correction | None = None


def _compiles(patterns: list[str]) -> list[str]:
    for p in patterns:
        try:
            re.compile(p)
        except re.error as e:
            raise ValueError(f"pattern {p!r} does not compile: {e}") from None
    return patterns


class ErrorMarkersFilter(FilterBase):
    seed_markers: list[str]
    patterns: list[str]

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, v: list[str]) -> list[str]:
        return _compiles(v)


class MinLengthFilter(FilterBase):
    min_chars: int
    exempt_output_kinds: list[OutputKind]


class MaxLengthFilter(FilterBase):
    max_chars: int


class CompletenessFilter(FilterBase):
    terminal_chars: list[str]
    allow_trailing_closers: list[str]
    exempt_output_kinds: list[OutputKind]


class LanguageFilter(FilterBase):
    detector: str
    expected: str
    min_chars: int
    min_probability: float
    below_min_chars: Literal["undetermined"]
    skip_output_kinds: list[OutputKind]


class ExactDuplicatesFilter(FilterBase):
    normalise: list[str]


class NearDuplicatesFilter(FilterBase):
    method: Literal["minhash_lsh"]
    threshold: float = Field(gt=0, le=1)
    num_perm: int
    shingle_unit: Literal["char", "word"]
    shingle_size: int
    max_cluster_size: int
    seed: int


class PiiKind(_Model):
    kind: Literal["email", "phone", "card", "iban", "ip"]
    pattern: str
    validator: str | None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, v: str) -> str:
        return _compiles([v])[0]


class PiiFilter(FilterBase):
    action: Literal["flag", "redact", "drop"]
    kinds: list[PiiKind]


class QualityHeuristicsFilter(FilterBase):
    min_chars: int
    skip_output_kinds: list[OutputKind]
    max_duplicate_line_fraction: float
    max_top_trigram_fraction: float
    max_symbol_ratio: float
    min_alpha_word_fraction: float
    min_mean_word_length: float
    max_mean_word_length: float
    evidence: list[str]


class Filters(_Model):
    error_markers: ErrorMarkersFilter
    min_length: MinLengthFilter
    max_length: MaxLengthFilter
    completeness: CompletenessFilter
    language: LanguageFilter
    exact_duplicates: ExactDuplicatesFilter
    near_duplicates: NearDuplicatesFilter
    pii: PiiFilter
    quality_heuristics: QualityHeuristicsFilter

    def ordered(self) -> list[FilterBase]:
        """The filters in the order they run."""
        return sorted((getattr(self, name) for name in type(self).model_fields), key=lambda f: f.order)


class SpotCheck(Row):
    sample_size: int
    seed: int
    on_bad: str
    checks: list[Row]


class DatasetFormat(Row):
    name: str
    fields: list[str]
    roles: list[str]


class SplitRule(Band):
    train: float
    val: float
    test: float
    correction: Correction | None = None

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitRule:
        if not math.isclose(self.train + self.val + self.test, 1.0):
            raise ValueError("train + val + test must equal 1")
        return self


class SplitMinimum(Row):
    split: Literal["val", "test"]
    min_rows: int


class SplitSettings(Row):
    seed: int
    stratify_by: str
    example_rows: int
    example_train: int
    example_val: int
    example_test: int


class AugmentMethod(Row):
    method: str


class Augmentation(_Model):
    methods: list[AugmentMethod]
    warning: Row


class DataFile(_Model):
    version: int
    principle: QualityPrinciple
    sources: Sources
    output_kinds: OutputKinds
    filters: Filters
    spot_check: SpotCheck
    formats: list[DatasetFormat]
    split_rules: list[SplitRule]
    split_minimums: list[SplitMinimum]
    split_settings: SplitSettings
    augmentation: Augmentation

    @field_validator("split_rules")
    @classmethod
    def _tiled(cls, bands: list[B]) -> list[B]:
        return check_tiling(bands)


# ---------------------------------------------------------------- diagnosis.yaml


class Fix(Row):
    order: int
    params: Params = {}
    instead_of: Params = {}
    applies_to_methods: list[Method] = []
    see: list[RuleId] = []
    when: str | None = None
    note: str | None = None


class Issue(Row):
    name: Literal["overfitting", "catastrophic_forgetting", "poor_quality", "slow_training", "out_of_memory"]
    symptoms: list[Row]
    fixes: list[Fix]

    @field_validator("fixes")
    @classmethod
    def _ordered(cls, fixes: list[Fix]) -> list[Fix]:
        if [f.order for f in fixes] != list(range(1, len(fixes) + 1)):
            raise ValueError("fixes must be ordered 1..n")
        return fixes

    def fix(self, suffix: str) -> Fix:
        """The fix whose id ends with ``.fix.<suffix>``."""
        for f in self.fixes:
            if f.id.endswith(f".fix.{suffix}"):
                return f
        raise KeyError(f"{self.id} has no fix '{suffix}'")


class WarningSign(Row):
    pattern: str
    issue: RuleId


class HealthyCurves(Row):
    watch: list[str]


class EpochSign(Row):
    direction: Literal["too_many", "too_few"]
    signs: list[str]


class DiagnosisFile(_Model):
    version: int
    issues: list[Issue]
    corrections: list[CorrectionRow]
    warning_signs: list[WarningSign]
    healthy_curves: HealthyCurves
    epoch_signs: list[EpochSign]

    @field_validator("issues")
    @classmethod
    def _all_issues(cls, issues: list[Issue]) -> list[Issue]:
        if sorted(i.name for i in issues) != sorted(ISSUE_NAMES):
            raise ValueError(f"must list each of {list(ISSUE_NAMES)} once")
        return issues

    def issue(self, name: str) -> Issue:
        for i in self.issues:
            if i.name == name:
                return i
        raise KeyError(f"unknown issue '{name}'; known: {', '.join(ISSUE_NAMES)}")


# ---------------------------------------------------------------- checklist.yaml


class ChecklistItem(Row):
    n: int
    evidence: str
    params: Params = {}
    see: list[RuleId] = []


class Checklist(_Model):
    before: list[ChecklistItem]
    during: list[ChecklistItem]
    after: list[ChecklistItem]

    @property
    def items(self) -> list[ChecklistItem]:
        return [*self.before, *self.during, *self.after]

    @model_validator(mode="after")
    def _numbered(self) -> Checklist:
        if [i.n for i in self.items] != list(range(1, len(self.items) + 1)):
            raise ValueError("checklist items must be numbered 1..n across before, during, after")
        return self


class Principle(Row):
    see: list[RuleId] = []


class SummaryStep(Row):
    order: int
    params: Params = {}
    see: list[RuleId] = []


class ValidationMetrics(Row):
    metrics: list[str]


class HeldOutEval(Row):
    max_runs: int


class ManualEval(Row):
    min_examples: int
    max_examples: int
    include_edge_cases: bool


class AbTest(Row):
    traffic_split: float
    min_requests: int
    metrics: list[str]


class ForgettingTask(_Model):
    category: str
    prompt: str
    expected: str


class ForgettingCheck(Row):
    tasks: list[ForgettingTask]
    correction: Correction


class Evaluation(_Model):
    validation_metrics: ValidationMetrics
    test_once: HeldOutEval
    manual: ManualEval
    ab_test: AbTest
    forgetting_check: ForgettingCheck


class ChecklistFile(_Model):
    version: int
    checklist: Checklist
    principles: list[Principle]
    summary_tree: list[SummaryStep]
    key_insight: Row
    evaluation: Evaluation


# ---------------------------------------------------------------------------------------------- evaluation.yaml
class JudgeAgreementRow(Row):
    """The agreement with the user's verdicts above which a model judge's scores may be used."""

    min_kappa: float = Field(ge=-1, le=1)
    min_n: int = Field(ge=1)


class GradesRow(Row):
    """How people's grades are sampled and how long they take (``eval.grades``)."""

    sample_size: int = Field(ge=1)
    seed: int
    seconds_per_grade: float = Field(gt=0)


class BarNeedsShareRow(Row):
    """Steps 1 and 2 compare only a share with the bar; ``says_graded`` words a graded decision."""

    says_graded: str = Field(min_length=1)
    card_graded: str = Field(min_length=1)
    card_ranks: str = Field(min_length=1)
    card_similarity: str = Field(min_length=1)
    card_none: str = Field(min_length=1)
    says_judge_trusted: str = Field(min_length=1)
    says_judge_below: str = Field(min_length=1)


class BarUngradedRow(Row):
    """The words for a similarity with no grades: the bar cannot be applied yet, what it would take."""

    says_step1: str = Field(min_length=1)
    says_step2: str = Field(min_length=1)
    summary: str = Field(min_length=1)


class EvaluationFile(_Model):
    """knowledge/evaluation.yaml: judge trust, the free-text metric, choice mode, people's grades."""

    version: int
    judge_agreement: JudgeAgreementRow
    free_text_metric: Row
    choice_mode: Row
    grades: GradesRow
    bar_needs_share: BarNeedsShareRow
    bar_ungraded: BarUngradedRow


# ---------------------------------------------------------------------------------------------- decide.yaml
class SequentialStopRow(Row):
    """When prompt evaluation may stop scoring rows: the planned looks and the error split over them."""

    alpha: float = Field(gt=0, lt=1)
    first_batch: int = Field(ge=1)
    growth: float = Field(gt=1)


class RaceRow(Row):
    """Successive halving over prompt variants: the share of survivors kept at each look."""

    keep_fraction: float = Field(gt=0, lt=1)
    see: RuleId


class DecideFile(_Model):
    """knowledge/decide.yaml: the sequential stopping rule and the racing of prompt variants."""

    version: int
    sequential_stop: SequentialStopRow
    race: RaceRow

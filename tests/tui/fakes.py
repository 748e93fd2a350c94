"""A small fake Advisor with the real interface and agent.api types, and fake tool services for TUI tests."""

from __future__ import annotations

import threading
from typing import Any

from agent.api import Question, Reason, Recommendation, Step
from tui import services as real_services

QUESTIONS = [
    Question(id="n_examples", type="number", prompt="How many labelled examples do you have?", minimum=0,
             maximum=10_000_000, default=1200, help="Below 1000 the seed advises prompts (rule when.n_examples)."),
    Question(id="prompt_quality", type="fraction", prompt="What fraction does your best prompt get right?",
             default=0.7, help="Measured by the prompt baseline; 0.9 is the bar."),
    Question(id="task", type="choice", prompt="What kind of task is it?",
             choices=["classification", "extraction", "generation"], default="classification"),
    Question(id="goals", type="multi_choice", prompt="What should fine-tuning improve?",
             choices=["quality", "latency", "cost", "format"], default=["quality"]),
    Question(id="data_path", type="path", prompt="Where is the data file?"),
]

RULES = {"n_examples": "size.ge_1k", "prompt_quality": "perf.quality.lt_0_9", "task": "task.classification",
         "goals": "goal.quality", "data_path": "data.clean_first"}


class FakeAdvisor:
    """Asks QUESTIONS in order; rejects out-of-range numbers with ``.error``; ``back`` re-asks."""

    def __init__(self, session_id: str | None = None, *, chat_model: Any = None, on_progress: Any = None,
                 delay: float = 0.0, pipeline: dict[str, Any] | None = None) -> None:
        self.session_id = session_id or "fake-session"
        self.pipeline = pipeline
        self.on_progress = on_progress
        self.answers: dict[str, Any] = {}
        self.index = 0
        self.error: str | None = None
        self.delay = delay
        self.calls: list[tuple[str, Any]] = []

    def _step(self) -> Step:
        path = [Reason(rule=RULES[q.id], text=f"answered {q.id}", evidence={q.id: self.answers[q.id]})
                for q in QUESTIONS if q.id in self.answers]
        checklist = {"chk.before.enough_examples": {"done": "n_examples" in self.answers,
                                                    "text": "Have at least 1000 good examples.",
                                                    "evidence": self.answers.get("n_examples")},
                     "chk.before.prompts_first": {"done": "prompt_quality" in self.answers,
                                                  "text": "Measure a prompt baseline before anything else.",
                                                  "evidence": self.answers.get("prompt_quality")}}
        if self.index >= len(QUESTIONS):
            rec = {"path": "fine_tune", "method": "lora", "summary": "Prompts reach 70%, below the 90% bar.",
                   "rules": [r.rule for r in path]}
            if self.pipeline is not None:
                rec["pipeline"] = self.pipeline
            return Step(kind="done", session_id=self.session_id, recommendation=Recommendation.from_dict(rec), path=path,
                        checklist=checklist, answers=dict(self.answers))
        q = QUESTIONS[self.index]
        q = Question(**{**q.to_dict(), "error": self.error})
        return Step(kind="question", session_id=self.session_id, question=q, path=path, checklist=checklist,
                    answers=dict(self.answers))

    def start(self, answers: dict[str, Any] | None = None) -> Step:
        self.calls.append(("start", answers))
        for q in QUESTIONS:
            if answers and q.id in answers and self.index < len(QUESTIONS) and QUESTIONS[self.index].id == q.id:
                self.answers[q.id] = answers[q.id]
                self.index += 1
        return self._step()

    def answer(self, value: Any) -> Step:
        self.calls.append(("answer", value))
        if self.delay:
            threading.Event().wait(self.delay)
        q = QUESTIONS[self.index]
        self.error = None
        if value == "" and q.default is not None:  # as the real advisor: "" takes the default
            value = q.default
        if q.type == "number" and (not isinstance(value, (int, float)) or value < (q.minimum or 0)):
            self.error = f"{value!r} is not a count of examples"
            return self._step()
        self.answers[q.id] = value
        self.index += 1
        if self.on_progress is not None and q.id in ("goals", "prompt_quality"):
            from tools.types import ProgressEvent

            if q.id == "goals":
                self.on_progress(ProgressEvent("train", step=1, total=10, metrics={"loss": 2.0}))
            else:
                self.on_progress(ProgressEvent("prompt_eval", step=1, total=3, metrics={"quality": 0.6},
                                               message="few_shot"))
        return self._step()

    def back(self) -> Step:
        self.calls.append(("back", None))
        self.error = None
        if self.index > 0:
            self.index -= 1
            self.answers.pop(QUESTIONS[self.index].id, None)
        return self._step()

    def change(self, qid: str, value: Any) -> Step:
        """``set NAME VALUE``: replace an answer; the pending question stays."""
        self.calls.append(("change", (qid, value)))
        self.answers[qid] = value
        return self._step()

    def why(self, text: str | None = None) -> str:
        self.calls.append(("why", text))
        return f"Asked because of rule {RULES.get(QUESTIONS[min(self.index, len(QUESTIONS) - 1)].id)}."

    def current(self) -> Step:
        return self._step()


class FakeTrainingProcess:
    def __init__(self, events: list[dict[str, Any]], result: dict[str, Any]) -> None:
        self.events, self.result_doc = events, result
        self.result: dict[str, Any] | None = None
        self.returncode = 0
        self.cancelled = False

    def __iter__(self):  # type: ignore[no-untyped-def]
        for e in self.events:
            if self.cancelled:
                break
            yield e
        self.result = self.result_doc

    def cancel(self) -> None:
        self.cancelled = True


class FakeServices:
    """tui.services with the tools replaced: records calls, returns canned results."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(real_services, name)

    def chat_model_configured(self) -> bool:
        return False

    def start_training(self, data_dir: str, *, resume: str | None = None, max_steps: int | None = None,
                       **_: Any) -> FakeTrainingProcess:
        self.calls.append(("train", data_dir, max_steps))
        events = [{"stage": "train", "step": s, "total": 20,
                   "metrics": {"loss": 2.5 - 0.1 * s, "tokens_per_s": 1500.0, "eta_s": 20 - s, "memory_mb": 900.0}}
                  for s in range(1, 21)]
        events += [{"stage": "train", "step": s, "total": 20, "metrics": {"val_loss": 2.6 - 0.1 * s}}
                   for s in (5, 10, 15, 20)]
        return FakeTrainingProcess(events, {"run_id": "train-fake", "status": "completed", "best_val_loss": 0.6,
                                            "steps": 20, "train_seconds": 12.5, "peak_memory_mb": 900.0})

    def train_preview(self, data: str, **_: Any) -> Any:
        """The shape of tools.train.preview.preview_training; ``refuse`` in the path gives a run with nothing
        trained."""
        from tools.train.preview import ExamplePreview, Segment, TrainPreview

        self.calls.append(("preview", data))
        nothing = "refuse" in data
        segs = [Segment("<|im_start|>user\nwhere is my card?", False, tokens=8),
                Segment("<|im_end|>", False, eos=True), Segment("\n<|im_start|>assistant\n", False, tokens=4),
                Segment("card_arrival", not nothing, tokens=3), Segment("<|im_end|>", not nothing, eos=True)]
        trained = 0 if nothing else 4
        ex = ExamplePreview(2, segs, trained, 17 - trained, not nothing)
        return TrainPreview(train=data, model="smollm2-135m-instruct", eos_token="<|im_end|>", examples=[ex],
                            examples_checked=1, trained_tokens=trained, masked_tokens=17 - trained,
                            examples_all_masked=int(nothing), examples_without_eos=int(nothing))

    def spotcheck(self, path: str, n: int = 100) -> FakeSpotCheck:
        self.spot = FakeSpotCheck()
        return self.spot

    def accept_rule(self, rule: dict[str, Any], spot: Any) -> str:
        self.calls.append(("accept_rule", rule))
        return "/tmp/tickets.spotchecked.jsonl"

    def diagnose(self, run_id: str) -> dict[str, Any]:
        return {"verdict": "healthy", "issues": [{"rule": "diag.ok", "text": "validation loss kept falling"}],
                "next_config": None}

    def prompt_estimate(self, path: str, *, limit: int | None = None) -> str:
        self.calls.append(("prompt_estimate", path, limit))
        return f"at most about 3 min for {limit or 120} rows (fake)"

    def prompt_eval(self, path: str, *, on_progress: Any = None, limit: int | None = None) -> dict[str, Any]:
        """The shape of tools.prompt.evaluation.run_prompt_eval (issue 5)."""
        self.calls.append(("prompt_eval", path, limit))
        return {"quality": 0.55, "ci95": [0.46, 0.63], "metric": "accuracy", "n": 120,
                "latency_ms": {"p50": 250.0, "p95": 400.0, "mode": "batched"}, "best": "few_shot",
                "best_quality": 0.72, "best_ci95": [0.65, 0.79], "bar": 0.9, "reaches_bar": False,
                "run_id": "prompt-fake",
                "variants": [{"name": "plain", "quality": 0.55, "ci95": [0.46, 0.63], "n": 120,
                              "latency_ms": {"p50": 250.0, "p95": 400.0}, "prompt_tokens": {"mean": 80.0}},
                             {"name": "few_shot", "quality": 0.72, "ci95": [0.65, 0.79], "n": 120,
                              "latency_ms": {"p50": 310.0, "p95": 450.0}, "prompt_tokens": {"mean": 420.0}}]}

    def evaluate_test(self, run_id: str, test: str, *, on_progress: Any = None) -> dict[str, Any]:
        """The shape of tools.evaluate.evaluate_test (issue 7)."""
        return {"quality": 0.93, "ci95": [0.88, 0.96], "n": 80, "metric": "accuracy", "run_id": run_id,
                "warnings": [], "vs": {"base": {"quality": 0.41, "ci95": [0.31, 0.52], "n": 80, "metric": "accuracy",
                                                "variant": "base"},
                                       "tuned": {"quality": 0.93, "ci95": [0.88, 0.96], "n": 80, "metric": "accuracy",
                                                 "variant": "tuned"}}}

    def forgetting(self, run_id: str, *, on_progress: Any = None) -> dict[str, Any]:
        return {"probes": 4, "base_score": 1.0, "tuned_score": 0.75, "drop": 0.25, "verdict": "degraded by 25.0 points",
                "base_ci95": [0.51, 1.0], "tuned_ci95": [0.3, 0.95], "lost": 1, "gained": 0,
                "items": [{"category": "arithmetic", "question": "2 + 2 = ?", "answer": "4", "base": "4",
                           "tuned": "billing", "status": "lost"}]}

    def inspect_data(self, path: str) -> dict[str, Any]:
        """The shape of tools.data.inspect (issue 4)."""
        return {"path": path, "format": "chat_jsonl", "rows": 488, "valid_rows": 487, "invalid_rows": 1,
                "problems": [{"file": path, "line": 7, "field": "messages", "message": "no assistant message"}],
                "output_kind": "label", "chars": {"output": {"mean": 8.4}}, "label_count": 2,
                "labels": {"billing": 250, "refund": 237}}

    def clean_data(self, path: str, out: str, *, on_progress: Any = None) -> dict[str, Any]:
        return {"input_rows": 500, "kept_rows": 470, "removed": {"exact_duplicate": 20, "empty_output": 10},
                "flagged": {"label_conflict": 3}, "out": out,
                "examples": {"exact_duplicate": [{"line": 4, "text": "where is my parcel"}]},
                "histograms": {"output_chars": {"all": {"0-16": 125, "16-32": 270, "32-64": 105}, "kept": {"0-16": 120, "16-32": 260, "32-64": 90}}}}


class FakeSpotCheck:
    def __init__(self, n: int = 3) -> None:
        self.items = [{"idx": i, "example": {"messages": [{"role": "user", "content": f"ticket {i}"},
                                                          {"role": "assistant", "content": "billing"}]}}
                      for i in range(n)]
        self.pos = 0
        self.verdicts: list[tuple[int, str, str | None]] = []

    def next(self) -> dict[str, Any] | None:
        done = {v[0] for v in self.verdicts}
        for item in self.items:
            if item["idx"] not in done:
                return item
        return None

    def verdict(self, idx: int, verdict: str, reason: str | None = None) -> None:
        self.verdicts.append((idx, verdict, reason))

    def propose_rule(self) -> dict[str, Any] | None:
        bad = [v for v in self.verdicts if v[1] == "bad"]
        return {"rule": "drop_if_contains", "pattern": "ticket 1", "because": bad[0][2]} if bad else None


def fake_advisor_factory(**kwargs: Any) -> FakeAdvisor:
    return FakeAdvisor(**kwargs)


def run_fake_app() -> None:
    """The real app with the fake advisor and fake tools (for scripts/tui_smoke.sh --fake)."""
    from tui.app import TunewiseApp

    TunewiseApp(advisor_factory=fake_advisor_factory, services=FakeServices()).run()

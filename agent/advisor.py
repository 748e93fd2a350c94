"""``Advisor``: one advisor session over the LangGraph graph, for the TUI, the CLI and scripts.

    adv = Advisor()                       # or Advisor(session_id) to resume a stored session
    step = adv.start({"task": "classification"})
    while step.kind == "question":
        step = adv.answer(input(step.question.prompt))
    print(step.recommendation)

Sessions live in ``sessions.sqlite`` (LangGraph's SQLite checkpointer) under TUNEWISE_HOME; answers,
decisions and tool calls also go to the run log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from agent import graph, questions, routing
from agent.api import Question, Reason, Recommendation, Step
from tools.errors import InputError
from tools.types import ProgressEvent


class Advisor:
    """One advisor session; ``session_id`` given -> resume it (or start a new one under that id)."""

    def __init__(self, session_id: str | None = None, *, chat_model: Any = None,
                 on_progress: Callable[[ProgressEvent], None] | None = None, checkpointer: Any = None) -> None:
        from tools.runlog import new_id

        self.session_id = session_id or new_id("adv-")
        self.chat_model = chat_model
        self.on_progress = on_progress
        self._saver = checkpointer if checkpointer is not None else graph.sqlite_checkpointer()
        self._graph = graph.build_graph(self._saver)
        # the chat model rides in the run config (never checkpointed: only scalars are stored)
        self._config: dict[str, Any] = {"configurable": {"thread_id": self.session_id, "chat_model": chat_model}}

    # ------------------------------------------------------------------ the contract
    def exists(self) -> bool:
        """True when this session id has stored state (so ``start`` resumes it)."""
        return bool(self._graph.get_state(self._config).values)

    def start(self, answers: dict[str, Any] | None = None) -> Step:
        """Start the session with pre-filled ``answers`` (question id -> value); resume it if it exists."""
        if self.exists():
            return self.current()
        values, errors = questions.validate_answers(dict(answers or {}))
        if errors:
            qid, why = next(iter(errors.items()))
            raise InputError(f"the answer for '{qid}' is not valid: {why}", where=qid,
                             fix=f"give '{qid}' as {self._expected(qid)}")
        self._log(lambda log: log.upsert_session(self.session_id, status="asking", answers=values))
        self._log_answers(values)
        return self._run({"session_id": self.session_id, "answers": values, "asked": [], "decisions": {},
                          "pipeline": {}, "plan": {}, "status": "asking"})

    def answer(self, value: Any) -> Step:
        """Answer the pending question; an invalid value returns the same question with ``error`` set."""
        step = self.current()
        if step.kind != "question" or step.question is None:
            return step
        q = step.question
        if self.chat_model is not None and isinstance(value, str) and not questions.coerce(q, value)[0]:
            from agent import llm

            extracted = llm.extract_answer(self.chat_model, q, value)
            if extracted is not None:
                value = extracted
        from langgraph.types import Command

        before = dict(step.answers)
        # "" means "take the default": LangGraph cannot resume with None
        new = self._run(Command(resume="" if value is None else value))
        self._log_answers({k: v for k, v in new.answers.items() if k not in before or before[k] != v})
        return new

    def back(self) -> Step:
        """Revise: re-ask the previous question (from a question or from the final recommendation)."""
        snap = self._graph.get_state(self._config)
        if not snap.values:
            return self.current()
        if snap.interrupts:
            from langgraph.types import Command

            return self._run(Command(resume=graph.BACK))
        update = graph.back_update(snap.values)
        if update is None:
            return self.current()
        self._graph.update_state(self._config, update, as_node="ask")
        return self._run(None)

    def change(self, qid: str, value: Any) -> Step:
        """Replace an answer (typically one derived from the data) and re-run the decisions from the start."""
        ok, coerced, reason = questions.coerce(questions.QUESTIONS[qid], value)
        if not ok:
            raise InputError(f"the answer for '{qid}' is not valid: {reason}", where=qid,
                             fix=f"give '{qid}' as {self._expected(qid)}")
        snap = self._graph.get_state(self._config)
        values = dict(snap.values or {})
        answers = {**(values.get("answers") or {}), qid: coerced}
        derived = {k: v for k, v in (values.get("derived") or {}).items() if k != qid}
        update = graph.back_update({**values, "asked": [*(values.get("asked") or []), "_"]}) or {}
        update.update(answers=answers, derived=derived, asked=list(values.get("asked") or []))
        self._graph.update_state(self._config, update, as_node="ask")
        self._log_answers({qid: coerced})
        return self._run(None)

    def current(self) -> Step:
        """The pending question, or the final recommendation, without changing anything."""
        snap = self._graph.get_state(self._config)
        values: dict[str, Any] = dict(snap.values or {})
        decisions = values.get("decisions") or {}
        path = [Reason(**r) for node in (*graph.DECISION_NODES, *graph.PIPELINE_NODES) for r in decisions.get(node, [])]
        common: dict[str, Any] = {"session_id": self.session_id, "path": path, "answers": dict(values.get("answers") or {}),
                  "checklist": routing.checklist({**values, "session_id": self.session_id}),
                  "derived": dict(values.get("derived") or {})}
        doc = values.get("recommendation")  # the checkpoint keeps the JSON document
        rec = Recommendation.from_dict(doc) if doc else None
        for intr in snap.interrupts or ():
            payload = intr.value if isinstance(intr.value, dict) else {}
            if "question" in payload:
                # the recommendation is already there when `go_on` asks whether to act on it
                return Step("question", question=Question(**payload["question"]), recommendation=rec, **common)
        return Step("done", recommendation=rec, **common)

    # ------------------------------------------------------------------ extras
    def close(self) -> None:
        """Close the session store's connection (the session stays saved)."""
        conn = getattr(self._saver, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def why(self, text: str | None = None) -> str:
        """Explain the pending question (with a chat model: by calling the knowledge tools)."""
        step = self.current()
        from agent import llm

        if self.chat_model is not None:
            try:
                return llm.explain(self.chat_model, step, text or "why?")
            except Exception as e:  # noqa: BLE001 - an unreachable model means the plain answer; noted in the log
                _chat_model_failed("why?", e)
        return llm.fallback_why(step)

    def propose_prompts(self, task_description: str, *, n: int = 3) -> list[str]:
        """Alternative system prompts to try in step 2 (needs a chat model; empty without one)."""
        if self.chat_model is None:
            return []
        from agent import llm

        try:
            return llm.propose_prompt_variants(self.chat_model, task_description, n=n)
        except Exception as e:  # noqa: BLE001 - no proposals is a valid outcome; noted in the log
            _chat_model_failed("prompt proposals", e)
        return []

    def _run(self, payload: Any) -> Step:
        for chunk in self._graph.stream(payload, self._config, stream_mode="custom"):
            if self.on_progress is not None and isinstance(chunk, dict) and "progress" in chunk:
                with contextlib.suppress(Exception):
                    self.on_progress(ProgressEvent.from_dict(chunk["progress"]))
        step = self.current()
        if step.kind == "done":
            rec = step.recommendation.to_dict() if step.recommendation else None
            self._log(lambda log: log.upsert_session(self.session_id, status="done", answers=step.answers,
                                                     recommendation=rec))
            self._log_decisions()
        return step

    def _log_decisions(self) -> None:
        """Every reason of the finished session, under the graph node that applied it, in one write."""
        decisions = self._graph.get_state(self._config).values.get("decisions") or {}
        by_node = {node: list(decisions.get(node, [])) for node in (*graph.DECISION_NODES, *graph.PIPELINE_NODES)}
        self._log(lambda log: log.log_decisions(self.session_id, by_node))

    def _log_answers(self, values: dict[str, Any]) -> None:
        self._log(lambda log: log.log_answers(self.session_id, values))

    @staticmethod
    def _log(write: Callable[[Any], None]) -> None:
        """Write to the run log; a locked or unreadable log must not stop the advice (a bug still raises)."""
        from tools.runlog import RunLog, RunLogError, log_warning

        try:
            write(RunLog())
        except RunLogError as e:
            log_warning(f"the advisor's run-log write was skipped: {e.what}")

    @staticmethod
    def _expected(qid: str) -> str:
        q = questions.QUESTIONS[qid]
        if q.choices:
            return ("any of " if q.type == "multi_choice" else "one of ") + ", ".join(q.choices)
        return {"fraction": "a fraction such as 0.9 or 90%", "number": "a number", "yes_no": "yes or no",
                "path": "an existing file path"}.get(q.type, "text")


def _chat_model_failed(what: str, e: Exception) -> None:
    from tools.errors import log_line

    log_line("WARNING", f"the chat model failed ({what}); answered without it: {type(e).__name__}: {e}")


def run_scripted(answers: dict[str, Any], *, session_id: str | None = None,
                 on_progress: Callable[[ProgressEvent], None] | None = None) -> dict[str, Any]:
    """Answer every question from ``answers`` (asking nothing) -> the ``advise --json`` document.

    Optional questions take their defaults; a required question without an answer is an ``InputError``
    naming its id.
    """
    adv = Advisor(session_id, on_progress=on_progress)
    step = adv.start(answers)
    seen: set[str] = set()
    while step.kind == "question" and step.question is not None:
        q = step.question
        if q.error:
            raise InputError(f"the answer for '{q.id}' is not valid: {q.error}", where=q.id,
                             fix=f"give '{q.id}' as {Advisor._expected(q.id)}")
        if q.default is None and q.required:
            raise InputError(f"missing required answer '{q.id}' ({q.prompt})", where=q.id,
                             fix=f"add '{q.id}' to the answers file")
        if q.id in seen:
            raise InputError(f"the default for '{q.id}' was not accepted", where=q.id, fix=f"add '{q.id}' to the answers file")
        seen.add(q.id)
        step = adv.answer(q.default)
    return {"session_id": adv.session_id,
            "recommendation": step.recommendation.to_dict() if step.recommendation else None}

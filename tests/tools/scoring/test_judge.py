"""The model judge against a stub OpenAI-compatible server (known behaviour proves the kappa code), the
user's side-by-side votes, and choice mode on the tiny model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._openai_stub import openai_stub
from tools.errors import InputError, ModelNotFoundError
from tools.scoring import judge as J


class _Judge:
    """Chat replies: PASS when the answer contains 'return a + b', else FAIL; 'A' to every pairwise question
    (pure order bias); or a ``fixed`` reply."""

    fixed: str | None = None

    @classmethod
    def reply(cls, body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        if cls.fixed is not None:
            return cls.fixed
        if "ANSWER A:" in prompt:
            return "A"
        return "Verdict: PASS" if "return a + b" in prompt.split("ANSWER:")[-1] else "FAIL."


@pytest.fixture
def stub_url() -> Iterator[str]:
    with openai_stub(_Judge.reply) as (url, _):
        yield url
    _Judge.fixed = None


def _judge(url: str) -> J.Judge:
    from agent.prompt_backends import register

    register()
    return J.Judge("openai:stub-judge", base_url=url)


def test_parse_verdict() -> None:
    assert J.parse_verdict("Verdict: pass.", J.RUBRIC_OPTIONS) == "PASS"
    assert J.parse_verdict("I think B is better", J.PAIR_OPTIONS) == "B"
    assert J.parse_verdict("It depends.", J.RUBRIC_OPTIONS) is None


def test_rubric_and_kappa_with_stub_judge(stub_url: str) -> None:
    judge = _judge(stub_url)
    answers = ["def add(a, b):\n    return a + b"] * 6 + ["def add(a, b):\n    return a - b"] * 4
    res = J.rubric(judge, ["Write add."] * 10, answers, ["def add(a, b): return a + b"] * 10)
    assert res.verdicts == ["PASS"] * 6 + ["FAIL"] * 4 and res.rate == 0.6 and res.invalid == 0
    assert res.ci95[0] < 0.6 < res.ci95[1] and res.share
    # Ground truth by hand: the tests say rows 0-4 pass, row 5 fails (the judge is wrong there), 6-9 fail.
    truth = ["PASS"] * 5 + ["FAIL"] * 5
    ag = J.agreement(res.verdicts, truth, ground_truth="executed tests")
    # 9 of 10 agree; judge PASS 6, truth PASS 5 -> pe = (6*5 + 4*5) / 100 = 0.5 -> kappa = (0.9-0.5)/0.5 = 0.8
    assert ag.n == 10 and ag.agreement == 0.9 and ag.kappa == pytest.approx(0.8)
    assert not ag.trusted  # kappa clears 0.6, but 10 rows are under the floor's 30
    ag30 = J.agreement(res.verdicts * 3, truth * 3, ground_truth="executed tests")
    assert ag30.n == 30 and ag30.kappa == pytest.approx(0.8) and ag30.trusted


def test_pairwise_swaps_positions_to_cancel_order_bias(stub_url: str) -> None:
    res = J.pairwise(_judge(stub_url), ["q"] * 4, ["a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4"], ["r"] * 4)
    # The stub always says "A": first order picks a, swapped order picks b -> every pair is a tie.
    assert res.verdicts == ["tie"] * 4 and res.rate == 0.5 and res.mode == "pairwise"


def test_reply_that_is_not_a_verdict_and_endpoint_down(stub_url: str) -> None:
    _Judge.fixed = "I cannot judge this."
    with pytest.raises(InputError, match="not verdicts"):
        J.rubric(_judge(stub_url), ["q"], ["a"], ["r"])
    with pytest.raises(ModelNotFoundError, match="endpoint failed"):
        J.rubric(_judge("http://127.0.0.1:9/v1"), ["q"], ["a"], ["r"])


def test_votes_are_resumable_and_give_a_win_rate(tmp_path: Path) -> None:
    from tools.evaluate import CompareResult, human_win_rate, pending_votes, record_vote, win_rate

    rows = [{"idx": i, "input": f"q{i}", "expected": "x", "why": ["random"], "prompt_baseline": f"p{i}",
             "tuned": f"t{i}"} for i in range(4)]
    res = CompareResult(run_id="run-x", test="t.jsonl", test_sha256="sha", metric="chrf", n=4, rows=rows,
                        sampled_from=4, test_rows=4, limit=None, columns=["prompt_baseline", "tuned"],
                        vote_a="prompt_baseline", vote_b="tuned")
    record_vote(res, 0, "b")
    record_vote(res, 1, "A")
    assert [r["idx"] for r in pending_votes(res)] == [2, 3]  # a resumed session asks only these
    record_vote(res, 2, "tie")
    record_vote(res, 1, "b")  # a changed mind: the later vote counts
    wr = human_win_rate("run-x", "sha", a_variant="prompt_baseline")
    assert (wr.b_wins, wr.a_wins, wr.ties, wr.n) == (2, 0, 1, 3) and wr.rate == pytest.approx(2.5 / 3)
    with pytest.raises(InputError):
        record_vote(res, 3, "maybe")
    assert win_rate(["a", "b"]).rate == 0.5


def test_choice_mode_answers_only_allowed_labels(tiny_model_dir: Path) -> None:
    from tools import generation, models

    model, tok = models.load_cached(models.resolve(str(tiny_model_dir)))
    labels = ["card_arrival", "refund", "exchange_rate"]
    prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
    scores = generation.label_logprobs(model, tok, prompts, labels)
    # the shared-prefix batch gives the same log-likelihood as scoring each label alone
    for p, row in zip(prompts, scores, strict=True):
        for k, lab in enumerate(labels):
            assert generation.label_logprobs(model, tok, [p], [lab])[0][0] == pytest.approx(row[k], abs=1e-3)
    picks = generation.choose(model, tok, prompts, labels)
    assert all(g.text in labels for g in picks)


def test_choice_scores_equal_a_plain_forward_of_prompt_and_label(tiny_model_dir: Path) -> None:
    """Shared prefix, row batches, label chunks and padding change nothing: each score equals the sum of the
    label's token log-probabilities from one uncached forward of ``prompt + label + eos``."""
    import torch

    from tools import generation, models

    model, tok = models.load_cached(models.resolve(str(tiny_model_dir)))
    labels = ["card_arrival", "refund", "exchange_rate", "pin"]
    sys_msg = {"role": "system", "content": "Classify the banking question."}
    prompts = [[sys_msg, {"role": "user", "content": "where is my card " * (1 + i % 4)}] for i in range(5)]
    prompts.append([{"role": "user", "content": "no system message here"}])  # no prefix shared by all rows

    def plain(msgs: list[dict[str, str]], label: str) -> float:
        ids = generation.chat_ids(tok, msgs)
        lab = list(tok(label, add_special_tokens=False)["input_ids"]) + [tok.eos_token_id]
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids + lab])).logits[0].float()
        lp = torch.log_softmax(logits, dim=-1)
        return sum(float(lp[len(ids) - 1 + t, lab[t]]) for t in range(len(lab)))

    for chunk in (64, 3, 1):  # all in one batch; labels split across forwards; one sequence per forward
        scores = generation.label_logprobs(model, tok, prompts, labels, chunk=chunk)
        for p, row in zip(prompts, scores, strict=True):
            assert row == pytest.approx([plain(p, lab) for lab in labels], abs=2e-3)


def test_agent_chosen_metric_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.lc_tools.evaluate import evaluate_test_set
    from agent.lc_tools.prompt_eval import prompt_eval

    monkeypatch.delenv("TUNEWISE_AGENT_METRICS", raising=False)
    for tool, args in ((evaluate_test_set, {"run_id": "r", "test_file": "t.jsonl"}), (prompt_eval, {"test": "t.jsonl"})):
        out = tool.invoke({**args, "metric": "os:system"})
        assert out["error"]["error"] == "InputError" and "chosen by an agent" in out["error"]["what"]
    monkeypatch.setenv("TUNEWISE_AGENT_METRICS", "my_metrics:score")
    out = evaluate_test_set.invoke({"run_id": "no-such-run", "test_file": "t.jsonl", "metric": "my_metrics:score"})
    assert "chosen by an agent" not in str(out)  # allowed: it gets past the gate (and fails on the missing run)


def test_judge_run_checks_against_executed_tests_and_logs_verdicts(stub_url: str, tiny_model_dir: Path,
                                                                    tmp_path: Path) -> None:
    from tests.tools.eval_run import make_run
    from tools.runlog import RunLog

    rid = make_run(tiny_model_dir)
    rows = [{"messages": [{"role": "user", "content": f"Write add(a, b) ({i})."},
                          {"role": "assistant", "content": "def add(a, b):\n    return a + b"}],
             "tests": ["assert add(1, 2) == 3"]} for i in range(4)]
    test = tmp_path / "code.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from agent.prompt_backends import register

    register()
    from tools.evaluate.judging import judge_run

    res = judge_run(rid, str(test), "openai:stub-judge", base_url=stub_url)
    # The tiny random model never writes add(); the tests fail every row, and the stub judge says FAIL: agreement.
    assert res.verdicts == ["FAIL"] * 4 and res.agreement is not None
    assert res.agreement.ground_truth == "executed tests" and res.agreement.n == 4
    assert res.agreement.agreement == 1.0 and not res.agreement.trusted  # 4 rows: under the floor's n
    logged = RunLog().query("SELECT idx, verdict, raw FROM judge_verdicts WHERE run_id = ? ORDER BY idx", [rid])
    assert [r["verdict"] for r in logged] == ["FAIL"] * 4 and logged[0]["raw"]
    ev = RunLog().query("SELECT kind, value FROM evaluations WHERE run_id = ? AND kind = 'judge_rubric'", [rid])
    assert ev and ev[0]["value"] == 0.0

"""Each cleaning filter on purpose-built rows; label and JSON outputs survive; inputs are never touched."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.tools._data_fixtures import banking77_dir
from tools.data import CleanConfig, clean
from tools.data.filters import RowChecks, iban_ok, luhn_ok
from tools.fileio import sha256_file
from tools.runlog import RunLog

QUESTIONS = [
    "How do I reset the PIN on my debit card?", "When will my bank transfer to Spain arrive?",
    "Why was I charged twice for one coffee?", "Can I freeze my card from the mobile app?",
    "What fees apply to cash withdrawals abroad?", "How long does a new card take to be delivered?",
    "Is there a limit on contactless payments?", "How can I change the address on my account?",
    "Why did my top-up with Apple Pay not go through?", "Where can I see my monthly statement?",
    "How do I add a second person to a joint account?", "Can I cancel a standing order online?",
    "What exchange rate do you use for dollars?", "How do I report a stolen phone with the app on it?",
    "Why is my salary not showing in my balance yet?", "Can I get a refund for a cancelled flight?",
    "How do I close my savings pot early?", "Which documents prove my identity for verification?",
    "Is it safe to share my card details with a merchant?", "What happens if I enter the wrong PIN three times?",
    "How do I set up a direct debit for my rent?", "Can children under sixteen open an account?",
    "Why was my virtual card declined at checkout?", "Where do I find my IBAN and sort code?",
    "How are interest payments on savings calculated?", "Can I pay in cash at a post office counter?",
    "What should I do if an ATM kept my card?", "How do I dispute a transaction I do not recognise?",
    "Can I choose a custom design for my card?", "How do I turn on notifications for every payment?",
]
ANSWERS = [
    "Open the app, choose Card, then Reset PIN, and confirm with your passcode.",
    "Transfers within the euro area usually arrive by the next working day.",
    "A duplicate charge is often a pending hold that disappears within three days.",
    "Yes, tap the card in the app and switch on Freeze; you can undo it at any time.",
    "The first two hundred pounds each month are free; after that a small fee applies.",
    "Standard delivery takes three to five working days after the order.",
    "Contactless payments are capped at one hundred pounds per transaction.",
    "Go to Profile, then Personal details, and enter the new address with proof.",
    "Top-ups fail when the card issuer blocks them; try again or use another card.",
    "Statements are under Accounts, then Documents, for every past month.",
    "Joint accounts need both people to sign up and confirm in their own apps.",
    "Yes, open Payments, pick the standing order and choose Cancel.",
    "We use the interbank rate at the moment the payment is processed.",
    "Call us at once so that we can block the app session and the cards.",
    "Salaries can take until the end of the day to appear, depending on the employer's bank.",
    "Refunds for cancelled flights come from the airline; we can raise a chargeback if they refuse.",
    "Savings pots can be closed at any time and the money returns to your main balance.",
    "A passport or a national identity card is enough for verification.",
    "Only enter card details on trusted sites that show the secure padlock.",
    "The card is blocked; unblock it in the app after answering the security questions.",
    "Give the landlord your account details and approve the mandate when it appears.",
    "Teen accounts are available from age thirteen with a parent's consent.",
    "Virtual cards can be declined when the merchant needs a physical card check.",
    "Both are shown under Account details, next to your account number.",
    "Interest is calculated daily on the balance and paid out every month.",
    "Cash deposits at post offices are possible for a fee of one percent.",
    "Contact the bank that runs the machine and order a replacement card in the app.",
    "Open the payment, choose Something is wrong, and follow the dispute steps.",
    "Custom designs are available for premium plan customers for a small fee.",
    "Go to Settings, then Notifications, and switch on Payment alerts.",
]


def _rows(pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in pairs]


def _write(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows(pairs)), encoding="utf-8")
    return path


def _base() -> list[tuple[str, str]]:
    return list(zip(QUESTIONS, ANSWERS, strict=True))


def _clean(tmp_path: Path, pairs: list[tuple[str, str]], **cfg) -> dict:
    src = _write(tmp_path / "in.jsonl", pairs)
    return clean(src, tmp_path / "out.jsonl", config=CleanConfig(**cfg)).to_dict()  # the --json document


def _kept(tmp_path: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(r["messages"][0]["content"], r["messages"][-1]["content"]) for r in rows]


def test_clean_base_rows_all_survive(tmp_path: Path) -> None:
    r = _clean(tmp_path, _base())
    assert r["input_rows"] == 30 and r["kept_rows"] == 30, r["removed"]
    assert set(r["removed"]) >= {"exact_duplicate", "near_duplicate", "empty", "error_marker", "length",
                                 "incomplete", "language", "pii", "conflicting_label", "quality"}


def test_error_markers_are_shapes_not_words(tmp_path: Path) -> None:
    pairs = _base()
    pairs += [("My payment failed, what is the error?", "Sorry about that failed payment. Try again in an hour."),
              ("How do I handle an exception in my budget?", "Exception handling here means a manual review."),
              ("Why did it crash?", "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'a'"),
              ("What happened to the upload?", "ValueError: invalid literal for int() with base 10."),
              ("Status of the job please?", "ERROR 500 upstream timed out.")]
    r = _clean(tmp_path, pairs)
    assert r["removed"]["error_marker"] == 3
    kept = dict(_kept(tmp_path))
    assert "My payment failed, what is the error?" in kept
    assert "How do I handle an exception in my budget?" in kept


def test_label_outputs_survive_length_and_completeness(tmp_path: Path) -> None:
    labels = ["card_arrival", "pin_blocked", "refund"]
    pairs = [(q, labels[i % 3]) for i, q in enumerate(QUESTIONS)]
    r = _clean(tmp_path, pairs)
    assert r["output_kind"] == "label"
    assert r["kept_rows"] == 30 and r["removed"]["length"] == 0 and r["removed"]["incomplete"] == 0
    assert r["label_distribution"]["refund"] == 10


def test_json_outputs_survive_and_free_text_is_judged(tmp_path: Path) -> None:
    pairs = _base()
    pairs += [(f"Extract the fields from order {i}", json.dumps({"id": i, "ok": True})) for i in range(5)]
    pairs += [("Tell me about the savings account options.", "The savings account pays interest and you can"),
              ("Short answer please, what is two plus two?", "Four")]
    r = _clean(tmp_path, pairs)
    assert r["removed"]["incomplete"] == 1 and r["removed"]["length"] == 1
    kept = dict(_kept(tmp_path))
    assert all(f"Extract the fields from order {i}" in kept for i in range(5))


def test_language_judges_only_long_free_text(tmp_path: Path) -> None:
    pairs = _base()
    pairs += [("Can you answer in the usual way please?",
               "Vous pouvez réinitialiser votre code dans l'application, rubrique Sécurité."),
              ("Say it very briefly please, thanks.", "Oui, merci."),  # too short to judge
              ("Show me the code for the sum please.", "```python\ndef total(xs):\n    return sum(xs)\n```")]
    r = _clean(tmp_path, pairs)
    assert r["language"] == "en"
    assert r["removed"]["language"] == 1
    kept = dict(_kept(tmp_path))
    assert "Say it very briefly please, thanks." in kept and "Show me the code for the sum please." in kept
    assert r["flagged"]["language_undetermined"] >= 2


def test_exact_duplicates_after_normalisation(tmp_path: Path) -> None:
    pairs = _base()
    q, a = pairs[0]
    pairs += [(q.upper(), a), ("  " + q.replace(" ", "   ") + "\n", a), (q.replace("?", "\uff1f"), a)]
    r = _clean(tmp_path, pairs, near_duplicates=False)
    assert r["removed"]["exact_duplicate"] == 3
    assert r["examples"]["exact_duplicate"][0]["line"] == 31
    assert r["examples"]["exact_duplicate"][0]["why"] == "copy of line 1"


def test_near_duplicates_removed(tmp_path: Path) -> None:
    long_q = ("I ordered a new debit card two weeks ago and it still has not arrived at my home address, "
              "what should I do now?")
    long_a = "Please check the delivery address in the app; if it is right we will send a replacement card."
    pairs = _base() + [(long_q, long_a), (long_q.replace("two weeks", "2 weeks").replace("home", "house"), long_a)]
    r = _clean(tmp_path, pairs)
    assert r["removed"]["near_duplicate"] == 1
    assert r["examples"]["near_duplicate"][0]["why"] == "near-duplicate of line 31"
    assert r["kept_rows"] == len(pairs) - 1


REVIEWS = ["great product, works well and the battery easily lasts for a whole week of use", "arrived broken and late", "love the colour", "too small for me",
           "battery died after a week", "exactly as described", "would buy again", "cheap plastic feel",
           "fast delivery, thanks", "stopped working in a day", "my kids adore it", "smells strange",
           "five stars from me", "not worth the money", "fits perfectly", "customer service ignored me",
           "best purchase this year", "the zip broke at once", "comfortable and warm", "paint peeled off",
           "super easy to set up", "instructions were useless", "sturdy and solid", "wrong size was sent"]


def test_templated_prompts_are_not_near_duplicates(tmp_path: Path) -> None:
    template = ("You are a careful annotator for an online shop. Classify the sentiment of the following "
                "customer review as positive or negative. Ignore remarks about delivery unless they are the "
                "main point, and treat sarcasm as negative. Answer with one word only, in lower case, without "
                "punctuation or explanation.\n\nReview: {}")
    pairs = [(template.format(r), "positive" if i % 2 == 0 else "negative") for i, r in enumerate(REVIEWS)]
    pairs.append((template.format(REVIEWS[0] + "!"), "positive"))  # a real near copy
    r = _clean(tmp_path, pairs)
    assert r["removed"]["near_duplicate"] == 1, r["examples"]
    assert r["kept_rows"] == len(REVIEWS) and r["near_duplicates"]["templates_stripped"] == 1
    # without template stripping, the shared template makes different reviews look like copies
    naive = _clean(tmp_path, pairs, boilerplate_min_rows=10**6)
    assert naive["removed"]["near_duplicate"] > 5


def test_conflicting_labels_are_removed(tmp_path: Path) -> None:
    labels = ["card_arrival", "pin_blocked", "refund"]
    pairs = [(q, labels[i % 3]) for i, q in enumerate(QUESTIONS)]
    pairs += [("Where is my card? It is late", "card_arrival"), ("where is my card?  it is late", "refund")]
    r = _clean(tmp_path, pairs)
    assert r["removed"]["conflicting_label"] == 2
    assert r["kept_rows"] == 30


def test_pii_flag_mask_remove(tmp_path: Path) -> None:
    pairs = _base() + [("My email is jane.doe@example.com, please update it.", "Done, we updated your e-mail."),
                       ("Charge card 4111 1111 1111 1111 again please.", "We will retry the payment today."),
                       ("Send it to IBAN GB82 WEST 1234 5698 7654 32 today.", "The transfer is on its way."),
                       ("My order id is 4111 1111 1111 1112, where is it?", "It ships tomorrow morning.")]
    r = _clean(tmp_path, pairs)
    assert r["flagged"]["pii"] == 3 and r["flagged"]["pii_card"] == 1 and r["flagged"]["pii_iban"] == 1
    assert r["kept_rows"] == len(pairs)
    r = _clean(tmp_path, pairs, pii_action="mask")
    kept = [q for q, _ in _kept(tmp_path)]
    assert "My email is [EMAIL], please update it." in kept
    assert "Charge card [CARD] again please." in kept
    r = _clean(tmp_path, pairs, pii_action="remove")
    assert r["removed"]["pii"] == 3


def test_pii_validators() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")
    checks = RowChecks(CleanConfig())
    assert [k for k, _, _ in checks.pii_spans("server at 192.168.1.20 and +44 20 7946 0958")] == ["phone", "ip"]
    assert checks.pii_spans("on 2024-01-15 we met") == []


def test_quality_heuristics_only_above_min_length(tmp_path: Path) -> None:
    spam = "buy now " * 30
    pairs = _base() + [("Tell me about the premium plan please.", spam.strip() + "."),
                       ("What symbols do I need for this?", "#### $$$$ %%%% &&&& **** @@@@ !!!! ~~~~ ^^^^ |||| ++++ "
                                                            "==== ---- #### $$$$ %%%% &&&& **** @@@@ !!!! ~~~~ ^^^^ ok."),
                       ("Is this fine and short?", "Yes yes yes yes.")]
    r = _clean(tmp_path, pairs)
    assert r["removed"]["quality"] == 2
    assert "Is this fine and short?" in dict(_kept(tmp_path))


def test_every_filter_can_be_switched_off(tmp_path: Path) -> None:
    pairs = _base() + [(_base()[0][0], _base()[0][1]), ("Tell me more about fees please now", "It depends on the")]
    off = {name: False for name in CleanConfig.SWITCHES}
    r = _clean(tmp_path, pairs, **off)
    assert r["kept_rows"] == len(pairs) and sum(r["removed"].values()) == 0


def test_input_untouched_output_atomic_report_and_runlog(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", _base() + [_base()[0]])
    before = sha256_file(src)
    report_path = tmp_path / "rep" / "report.json"
    r = clean(src, tmp_path / "out.jsonl", report_path=report_path).to_dict()
    assert sha256_file(src) == before == r["dataset_sha256"]
    assert json.loads(report_path.read_text())["kept_rows"] == 30
    assert "| exact_duplicate | 1 |" in report_path.with_suffix(".md").read_text()
    assert not list(tmp_path.glob(".out.jsonl.*"))  # no temp files left
    rows = RunLog().query("SELECT sha256, kind, rows FROM datasets ORDER BY created_at")
    assert rows[0] == {"sha256": before, "kind": "input", "rows": 31}
    assert rows[1]["kind"] == "cleaned" and rows[1]["rows"] == 30
    assert sum(r["histograms"]["output_chars"]["kept"].values()) == 30
    with pytest.raises(Exception, match="overwrite the input"):
        clean(src, src)


def test_invalid_rows_stop_unless_skipped(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", _base())
    with src.open("a", encoding="utf-8") as f:
        f.write('{"messages": [{"role": "user", "content": "no answer"}]}\n')
    with pytest.raises(Exception, match=r"in\.jsonl:31:messages"):
        clean(src, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    r = clean(src, tmp_path / "out.jsonl", config=CleanConfig(skip_invalid=True)).to_dict()
    assert r["kept_rows"] == 30 and r["removed"]["invalid"] == 1 and r["problems"][0]["line"] == 31


def test_banking77_realistic(tmp_path: Path) -> None:
    banking77 = banking77_dir()
    rows = list(csv.DictReader((banking77 / "test.csv").open(encoding="utf-8")))[:1500]
    src = tmp_path / "b.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(rows + rows[:50])  # 50 planted exact copies
    r = clean(src, tmp_path / "out.jsonl").to_dict()
    assert r["output_kind"] == "label"
    assert r["removed"]["exact_duplicate"] >= 50
    assert r["removed"]["length"] == 0 and r["removed"]["incomplete"] == 0  # labels survive
    assert r["kept_rows"] >= 1400


def test_clean_writes_a_datasets_folder(tmp_path: Path) -> None:
    from tools.data import load

    src = _write(tmp_path / "in.jsonl", _base())
    r = clean(src, tmp_path / "cleaned_ds").to_dict()
    res = load(tmp_path / "cleaned_ds")
    assert res.format == "hf" and len(res.examples) == r["kept_rows"] == 30


def test_two_process_first_pass_matches_serial(tmp_path: Path) -> None:
    pairs = _base() + [_base()[3], (_base()[5][0].upper(), _base()[5][1])]
    pairs += [("Can you answer in the usual way please?",
               "Vous pouvez réinitialiser votre code dans l'application, rubrique Sécurité.")]
    src = _write(tmp_path / "in.jsonl", pairs)
    text = src.read_text(encoding="utf-8").replace("\n", "\r\n", 3)
    lines = text.splitlines(keepends=True)
    lines.insert(20, "\r\n")
    lines.insert(25, "{broken\n")
    src.write_bytes(b"\xef\xbb\xbf" + "".join(lines).encode("utf-8"))
    from tools.data.cleaning.parallel import byte_ranges as _byte_ranges

    ranges = _byte_ranges(src, "openai", CleanConfig(workers=2, parallel_min_bytes=0))
    assert ranges is not None and ranges[1][2] > 10  # the second process starts at a later line
    serial = clean(src, tmp_path / "a.jsonl", config=CleanConfig(workers=1, skip_invalid=True)).to_dict()
    parallel = clean(src, tmp_path / "b.jsonl", config=CleanConfig(workers=2, parallel_min_bytes=0,
                                                                   skip_invalid=True)).to_dict()
    for key in ("input_rows", "kept_rows", "removed", "flagged", "language", "examples", "problems"):
        assert parallel[key] == serial[key], key
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert serial["removed"]["exact_duplicate"] == 2 and serial["removed"]["invalid"] == 1


def test_progress_events_carry_totals(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", _base())
    events = []
    clean(src, tmp_path / "out.jsonl", on_progress=events.append)
    read = [e for e in events if e.stage == "read"]
    assert read and read[-1].step == 30 and read[-1].total == 30
    assert [e for e in events if e.stage == "write"][-1].step == 30


def test_many_distinct_short_outputs_are_not_labels() -> None:
    from collections import Counter

    from tools.data.profile import outputs_are_labels

    cfg = CleanConfig()
    capped = Counter({f"answer {i}": 1 for i in range(10_000)})  # what is left after the cap
    assert outputs_are_labels(capped, 1_000_000, 1_000_000, cfg)  # (the naive reading)
    assert not outputs_are_labels(capped, 1_000_000, 1_000_000, cfg, distinct_seen=890_000)
    assert outputs_are_labels(Counter({"spam": 50, "ham": 50}), 100, 100, cfg)


def test_oversize_near_duplicate_clusters_are_reported_not_collapsed(tmp_path: Path) -> None:
    long_q = "My card payment at the supermarket was declined twice today although my balance is fine, why"
    long_a = "A declined payment with enough balance usually means the merchant's terminal asked for the chip."
    copies = [(long_q + "?" * k, long_a) for k in range(1, 6)]  # five near copies
    r = _clean(tmp_path, _base() + copies, max_cluster_size=3)
    assert r["removed"]["near_duplicate"] == 0 and r["flagged"]["template_cluster"] == 5
    r = _clean(tmp_path, _base() + copies)
    assert r["removed"]["near_duplicate"] == 4


def test_empty_content_is_removed_as_empty_not_fatal(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", _base() + [("A question with no answer yet?", ""), ("   ", "An answer.")])
    r = clean(src, tmp_path / "out.jsonl").to_dict()
    assert r["removed"]["empty"] == 2 and r["kept_rows"] == 30 and not r["problems"]


def test_meta_travels_with_kept_rows(tmp_path: Path) -> None:
    rows = _rows(_base())
    rows[0]["meta"] = {"synthetic": True, "label": "x"}
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    clean(src, tmp_path / "out.jsonl")
    first = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["meta"] == {"synthetic": True, "label": "x"}

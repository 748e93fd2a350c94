"""Write the built-in demo task: SYNTHETIC support-ticket intent classification (8 labels, 1200 rows + 8 flawed).

1200 because the advisor (rightly) will not recommend fine-tuning below 1000 examples (ftw.min_examples), and
the demo exists to show the whole flow through a short LoRA run.

Every row is generated from templates below (no real customer text) and carries ``meta.synthetic = true``.
A few deliberate flaws (exact duplicates, a placeholder reply, a conflicting label) give the cleaner something to
find. Deterministic: the same seed always writes the same file.

    python scripts/make_demo_data.py  # -> knowledge/demo/support_tickets.jsonl and support_tickets_test.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "knowledge" / "demo" / "support_tickets.jsonl"
TEST_OUT = OUT.with_name("support_tickets_test.jsonl")  # a separate clean set for the prompt baseline
SYSTEM = ("Classify the customer support ticket into exactly one intent: billing, refund, shipping, login, "
          "cancel, bug, feature, product. Answer with the intent only.")
# One word per intent (one or two tokens each): the check run spends its few steps on the mapping from ticket to
# intent, not on spelling out long label names, so a short CPU run shows whether training helps.

TEMPLATES = {
    "billing": ["I was charged {n} times for my {plan} plan this month", "why is my invoice higher than usual",
                "my card was billed twice for order {id}", "can I get a copy of my invoice for {month}",
                "the {plan} plan price on my bill looks wrong", "how do I change the card you charge"],
    "refund": ["I want my money back for order {id}", "please refund the {item} I returned last week",
               "how long does a refund take to reach my card", "I returned the {item} but got no refund yet",
               "can I get a refund on the {plan} plan", "the refund for {id} is still pending"],
    "shipping": ["where is my package, order {id}", "my {item} has not arrived after {n} days",
                 "tracking for {id} has not updated since {month}", "can you ship the {item} to a different address",
                 "the courier says delivered but I have no {item}", "how much is express shipping"],
    "login": ["I can't log in to my account", "the password reset email never arrives",
                       "my account is locked after {n} attempts", "two-factor code is not accepted",
                       "I lost access to the email on my account", "the app keeps logging me out"],
    "cancel": ["please cancel my {plan} subscription", "how do I stop the monthly renewal",
                            "cancel my plan before the next billing date", "I no longer need the {plan} plan",
                            "turn off auto-renew on my account", "end my subscription at the end of {month}"],
    "bug": ["the app crashes when I open the {item} page", "the export button does nothing",
                   "search returns an error {n} times out of 10", "the page shows a blank screen after login",
                   "images in the {item} gallery do not load", "the checkout button is greyed out"],
    "feature": ["please add a dark mode", "it would be great to export to CSV",
                        "can you support paying with {pay}", "I'd love a way to share my {item} list",
                        "add keyboard shortcuts to the editor", "let me schedule reports every {month}"],
    "product": ["does the {item} come with a warranty", "is the {item} compatible with {pay}",
                         "what is the difference between {plan} and Pro", "how big is the {item}",
                         "does the {plan} plan include support", "what colours does the {item} come in"],
}
FILL = {"n": ["2", "3", "4", "5", "10"], "plan": ["Basic", "Plus", "Team", "Family"],
        "id": ["A1234", "B7781", "C0042", "D9120", "E5567"], "month": ["March", "April", "May", "June"],
        "item": ["headphones", "blender", "backpack", "lamp", "keyboard"], "pay": ["PayPal", "Apple Pay", "iDEAL"]}
OPENERS = ["", "", "Hi, ", "Hello, ", "Hey there. ", "Good morning, ", "Hi team, ", "Quick question: ",
           "Hello support, ", "Urgent: "]
CONTEXT = ["", "", "", " I'm on the {plan} plan.", " My order number is {id}.", " This is the second time I write.",
           " I have been a customer since {month}.", " I'm using the app on my phone.", " It started in {month}.",
           " My account email is the one I signed up with.", " I tried twice already.",
           " A colleague has the same problem.", " I bought the {item} as a gift."]
CLOSERS = ["", "", " Thanks.", " Please help.", " Thanks in advance!", " Can someone get back to me?",
           " Cheers.", " Regards, Sam.", " Thank you!", " Any update would be appreciated."]


def rows(seed: int = 7, per_label: int = 150, *, flaws: bool = True, exclude: set[str] | None = None) -> list[dict]:
    rng = random.Random(seed)
    out = []
    seen: set[str] = set(exclude or ())  # the test set never repeats a training row
    for label, templates in TEMPLATES.items():
        made = 0
        while made < per_label:
            fill = {k: rng.choice(v) for k, v in FILL.items()}
            text = rng.choice(templates).format(**fill)
            tail = rng.choice(CONTEXT).format(**fill) + rng.choice(CLOSERS)
            if tail and text[-1] not in ".?!":
                text += "?" if text.split()[0] in ("how", "where", "why", "can", "does", "is", "what") else "."
            text = rng.choice(OPENERS) + text + tail
            text = text[0].upper() + text[1:]
            if text in seen:  # every good row is distinct; the flaws below add the duplicates on purpose
                continue
            seen.add(text)
            made += 1
            out.append({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text},
                                     {"role": "assistant", "content": label}],
                        "meta": {"label": label, "synthetic": True}})
    rng.shuffle(out)
    if not flaws:
        return out
    # deliberate flaws for the cleaner: 6 exact duplicates, 1 placeholder reply, 1 label conflict
    out += [json.loads(json.dumps(r)) for r in out[:6]]
    empty = json.loads(json.dumps(out[10]))
    empty["messages"][2]["content"] = "n/a"  # a placeholder reply (an empty one would make the file invalid)
    conflict = json.loads(json.dumps(out[11]))
    conflict["messages"][2]["content"] = "billing" if conflict["meta"]["label"] != "billing" else "refund"
    out += [empty, conflict]
    return out


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    train = rows()
    test = rows(seed=1234, per_label=5, flaws=False, exclude={r["messages"][1]["content"] for r in train})
    for path, data in ((OUT, train), (TEST_OUT, test)):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data))
        print(f"wrote {len(data)} synthetic rows to {path}")


if __name__ == "__main__":
    main()

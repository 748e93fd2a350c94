"""The `?` help screen: every key, and what each view is for."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# tunewise — keys

| key | does |
|---|---|
| **?** | this help (escape closes it); in a text field that holds text, `?` is typed instead (the footer dims it) |
| **ctrl+q** / **ctrl+c** | quit; with work running it asks: stop it (training keeps a checkpoint), keep it running in the background, or stay |
| **ctrl+x** | cancel the long job of this view (training writes a checkpoint first; Resume continues it) |
| **F1 … F6** | Advisor, Data, Prompt baseline, Training, Runs, Evaluation |
| **tab / shift+tab** | move between fields and buttons |
| **enter** | answer the question: in a field, or on the highlighted option of a choice (↑/↓ move, space only selects); press a button |
| **ctrl+b** | back: revise the previous answer |
| **→** | accept the path completion in a path field |
| **g / b / s** | spot-check: good, bad (then type a reason), skip |
| **m / c** | runs: mark a run for comparison, compare the two marked runs |
| **ctrl+g** | grade outputs good / bad / skip (g / b / s, q closes; resumable): the run in the Evaluation view's run field, else the newest prompt baseline |

**Advisor**: the conversation. Every decision cites a knowledge rule id and its evidence (right panel);
the 15-item checklist ticks as evidence arrives.
**Data**: inspect and clean a file (counts per reason, examples, length histogram), then spot-check it by hand.
**Prompt baseline**: prompt variants scored with a 95% CI and latency, against the 90% bar.
**Training**: Preview shows the first examples as the model will see them (trained tokens on green, the
end-of-turn token marked, trained/masked counts); Start refuses when nothing or everything would be trained;
a live loss chart (train and validation), progress, tokens/s, ETA, memory; Cancel checkpoints, Resume continues.
**Runs**: every run in the run log; filter, open one, compare two.
**Evaluation**: test score with CI, side-by-side outputs, the forgetting check, A/B, report export.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)

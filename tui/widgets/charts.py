"""Charts drawn with Unicode: a loss chart (train and validation, or two runs overlaid) and a bar histogram."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

MARKS = {"train": ("•", "cyan"), "val": ("◆", "magenta")}
EXTRA = [("+", "yellow"), ("x", "green"), ("o", "red"), ("*", "blue")]


class LossChart(Widget):
    """A scatter-line plot of loss against step; one mark and colour per series, a legend underneath."""

    version: reactive[int] = reactive(0)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: dict[str, list[tuple[float, float]]] = {}

    def add_point(self, name: str, step: float, value: float) -> None:
        if value is None or not math.isfinite(float(value)):
            return
        self.series.setdefault(name, []).append((float(step), float(value)))
        self.version += 1

    def set_series(self, series: dict[str, list[tuple[float, float]]]) -> None:
        self.series = {k: [(float(s), float(v)) for s, v in pts] for k, pts in series.items()}
        self.version += 1

    def clear(self) -> None:
        self.series = {}
        self.version += 1

    def point_count(self, name: str | None = None) -> int:
        if name is not None:
            return len(self.series.get(name, []))
        return sum(len(v) for v in self.series.values())

    def _style(self, i: int, name: str) -> tuple[str, str]:
        return MARKS[name] if name in MARKS else EXTRA[i % len(EXTRA)]

    def render(self) -> Text:
        width, height = max(self.size.width, 20), max(self.size.height, 5)
        pts = [p for s in self.series.values() for p in s]
        if not pts:
            return Text("No loss yet: the chart fills in as training reports steps.", style="dim")
        axis_w = 8
        plot_w, plot_h = width - axis_w - 1, height - 2
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 0.5, y1 + 0.5
        if x1 - x0 < 1e-9:
            x1 = x0 + 1
        grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(plot_h)]
        legend = []
        for i, (name, series) in enumerate(self.series.items()):
            mark, colour = self._style(i, name)
            legend.append((f"{mark} {name}", colour))
            for sx, sy in series:
                col = round((sx - x0) / (x1 - x0) * (plot_w - 1))
                row = plot_h - 1 - round((sy - y0) / (y1 - y0) * (plot_h - 1))
                grid[row][col] = (mark, colour)
        t = Text()
        for r, line in enumerate(grid):
            yv = y1 - (y1 - y0) * r / max(plot_h - 1, 1)
            label = f"{yv:7.3f} " if r in (0, plot_h - 1, plot_h // 2) else " " * axis_w
            t.append(label, style="dim")
            t.append("│", style="dim")
            for ch, style in line:
                t.append(ch, style=style)
            t.append("\n")
        t.append(" " * axis_w + "└" + "─" * plot_w + "\n", style="dim")
        left, right = f"{'step':>{axis_w - 1}} {int(x0)}", f"{int(x1)}"
        legend_len = sum(len(label) + 2 for label, _ in legend)
        gap = max(axis_w + 1 + plot_w - len(left) - len(right) - legend_len, 2)
        t.append(left + " " * (gap // 2), style="dim")
        for label, colour in legend:
            t.append(label + "  ", style=colour)
        t.append(" " * (gap - gap // 2) + right, style="dim")
        return t


class Histogram(Widget):
    """Horizontal bars for ``{bucket: count}`` (the length histogram of the data report)."""

    version: reactive[int] = reactive(0)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.bins: list[tuple[str, float]] = []

    def set_bins(self, bins: dict[str, Any] | list[Any]) -> None:
        if isinstance(bins, dict):
            self.bins = [(str(k), float(v)) for k, v in bins.items()]
        else:
            self.bins = [(str(b[0]), float(b[1])) for b in bins]
        self.version += 1

    def render(self) -> Text:
        if not self.bins:
            return Text("no histogram yet", style="dim")
        label_w = max(len(b[0]) for b in self.bins)
        top = max(v for _, v in self.bins) or 1
        bar_w = max(self.size.width - label_w - 10, 5)
        t = Text()
        for label, v in self.bins:
            t.append(f"{label:>{label_w}} ", style="dim")
            t.append("█" * max(int(v / top * bar_w), 1 if v else 0), style="cyan")
            t.append(f" {int(v)}\n")
        return t


class LearningCurveChart(Widget):
    """Quality against training examples (log scale): measured points (●, with 95% CI as │), predictions at
    2x/5x/10x (○) and the bar (a dashed line); the curve's own sentence underneath."""

    DEFAULT_CSS = "LearningCurveChart { height: 14; }"
    version: reactive[int] = reactive(0)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.points: list[tuple[float, float, float, float]] = []  # n, quality, ci low, ci high
        self.predicted: list[tuple[float, float]] = []
        self.bar: float | None = None
        self.message = ""

    def set_curve(self, curve: dict[str, Any], *, bar: float | None = None) -> None:
        self.points = []
        for p in curve.get("points") or []:
            lo, hi = (p.get("ci95") or [p["quality"], p["quality"]])[:2]
            self.points.append((float(p["n"]), float(p["quality"]), float(lo), float(hi)))
        self.predicted = [(float(p["n"]), float(p["quality"])) for p in curve.get("predictions") or []]
        self.bar = bar if bar is not None else curve.get("bar")
        self.message = str(curve.get("message") or "")
        self.version += 1

    def render(self) -> Text:
        if not self.points:
            return Text("No learning curve yet.", style="dim")
        width, height = max(self.size.width, 30), max(self.size.height, 8)
        axis_w, plot_h = 6, height - 3
        plot_w = width - axis_w - 1
        xs = [p[0] for p in self.points] + [p[0] for p in self.predicted]
        lx0, lx1 = math.log(min(xs)), math.log(max(xs))
        if lx1 - lx0 < 1e-9:
            lx1 = lx0 + 1

        def col(n: float) -> int:
            return round((math.log(n) - lx0) / (lx1 - lx0) * (plot_w - 1))

        def row(q: float) -> int:
            return plot_h - 1 - round(max(0.0, min(1.0, q)) * (plot_h - 1))

        grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(plot_h)]
        if self.bar is not None:
            for c in range(0, plot_w, 2):
                grid[row(self.bar)][c] = ("╌", "green")
        for n, q, lo, hi in self.points:
            for r in range(row(hi), row(lo) + 1):
                grid[r][col(n)] = ("│", "cyan")
            grid[row(q)][col(n)] = ("●", "cyan")
        for n, q in self.predicted:
            grid[row(q)][col(n)] = ("○", "yellow")
        t = Text()
        for r, line in enumerate(grid):
            label = {0: "100% ", plot_h - 1: "  0% ", (plot_h - 1) // 2: " 50% "}.get(r, " " * (axis_w - 1))
            t.append(label, style="dim")
            t.append("│", style="dim")
            for ch, style in line:
                t.append(ch, style=style)
            t.append("\n")
        t.append(" " * (axis_w - 1) + "└" + "─" * plot_w + "\n", style="dim")
        left, right = f"{int(min(xs)):,} examples", f"{int(max(xs)):,} (log scale)"
        t.append(" " * axis_w + left + " " * max(plot_w - len(left) - len(right), 1) + right + "\n", style="dim")
        t.append("● measured (95% CI)  ", style="cyan")
        t.append("○ predicted  ", style="yellow")
        t.append("╌ bar", style="green")
        if self.message:
            t.append("\n" + self.message)
        return t

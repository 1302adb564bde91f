"""The results as a markdown table (printed, and written to bench/results.md)."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

from bench.llm_suite import LlmReport
from bench.measure import median


@dataclass
class Report:
    """Everything measured in one run."""

    quick: bool
    grid: dict[tuple[str, int, int], Any] = field(default_factory=dict)
    rounds: list[dict[str, float]] = field(default_factory=list)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    history: dict[str, float] = field(default_factory=dict)
    mirror_lag: tuple[float, float, int] | None = None
    api: tuple[float, float, int] | None = None
    temporal_start: tuple[float, float, int] | None = None
    dispatch: tuple[float, float, int] | None = None
    llm: LlmReport = field(default_factory=LlmReport)
    total_seconds: float = 0.0

    def ratio(self, a: str, b: str) -> float:
        """Median over the interleaved rounds of runs/s(a) / runs/s(b)."""
        return median([r[a] / r[b] for r in self.rounds if a in r and b in r])

    def markdown(self) -> str:
        """The whole report."""
        names = sorted({k[0] for k in self.grid}, key=["B0", "B1", "B2", "B3", "B3'",
                                                      "P1"].index)
        cols = sorted({(k[1], k[2]) for k in self.grid})
        out = [f"# Benchmark results ({'quick' if self.quick else 'full'})", "",
               f"{time.strftime('%Y-%m-%d %H:%M')} · {platform.machine()} · "
               f"{os.cpu_count()} cores · "
               f"total {self.total_seconds:.0f} s", "",
               "B0 asyncio loop · B1 B0 + one Postgres commit per step · B2 hand-written "
               "Temporal workflow (one activity per step) · B3 our interpreter, mirror on · "
               "B3' mirror off · P1 DBOS Transact on the same Postgres. Same step code "
               "(the transform step's JMESPath work), no LLM latency.", "",
               "## Runs per second (steps x concurrent runs)", "",
               "| variant | " + " | ".join(f"{s} st x {c}" for s, c in cols) + " |",
               "|---|" + "---:|" * len(cols)]
        for name in names:
            cells = [self.grid.get((name, s, c)) for s, c in cols]
            out.append(f"| {name} | " + " | ".join(
                f"{cell.per_second:,.1f}" if cell else "-" for cell in cells) + " |")
        out += ["", "## Latency of one run alone (p50, ms) and per-step overhead", "",
                "| variant | 1 step | 5 steps | 20 steps | per step (ms) |",
                "|---|---:|---:|---:|---:|"]
        for name in names:
            one, five, twenty = (self.grid.get((name, s, 1)) for s in (1, 5, 20))
            per_step = ((twenty.p50_ms - one.p50_ms) / 19) if one and twenty else float("nan")
            out.append(f"| {name} | {one.p50_ms if one else 0:.1f} | "
                       f"{five.p50_ms if five else 0:.1f} | {twenty.p50_ms if twenty else 0:.1f} "
                       f"| {per_step:.2f} |")
        out += ["", f"## Ratios at 64 concurrent 5-step runs (median of {len(self.rounds)} "
                "interleaved rounds)", "", "| ratio | value | target |", "|---|---:|---|"]
        for a, b, target in (("B3", "B2", ">= 1.0"), ("B3", "B1", "-"), ("B3", "P1", ">= 0.8")):
            out.append(f"| {a}/{b} | {self.ratio(a, b):.3f} | {target} |")
        out += ["", "Rounds (runs/s): " + "; ".join(
            ", ".join(f"{k} {v:.1f}" for k, v in r.items()) for r in self.rounds), ""]
        out += ["## Other figures", "", "| figure | value | target |", "|---|---:|---|"]
        five = self.grid.get(("B3", 5, 1))
        if five:
            out.append(f"| single 5-step run p50 (B3) | {five.p50_ms:.1f} ms | <= 60 ms |")
        if self.api:
            out.append(f"| API start p50 / p99 ({self.api[2]} x POST run?wait=0) | "
                       f"{self.api[0]:.1f} / {self.api[1]:.1f} ms | p99 <= 20 ms |")
        if self.temporal_start:
            t = self.temporal_start
            out.append(f"| Temporal StartWorkflowExecution p50 / p99 ({t[2]} x, the "
                       f"dispatcher's call, same run) | {t[0]:.1f} / {t[1]:.1f} ms | - |")
        if self.dispatch:
            d = self.dispatch
            out.append(f"| API accepted → Temporal started the workflow p50 / p99 ({d[2]} "
                       f"runs: the dispatcher's lag, off the request) | {d[0]:.1f} / "
                       f"{d[1]:.1f} ms | - |")
        if self.mirror_lag:
            out.append(f"| mirror lag p50 / p99 (step finished → its row's NOTIFY received; "
                       f"{self.mirror_lag[2]} steps, 64 x 5-step) | "
                       f"{self.mirror_lag[0]:.1f} / {self.mirror_lag[1]:.1f} ms | p99 <= 250 ms |")
        for name, per_step in self.history.items():
            out.append(f"| history events per step ({name}, 20-step run) | {per_step:.2f} | - |")
        if self.cpu:
            procs = sorted({p for v in self.cpu.values() for p in v})
            out += ["", "## CPU milliseconds per step (64 x 5-step)", "",
                    "| variant | " + " | ".join(procs) + " | total |",
                    "|---|" + "---:|" * (len(procs) + 1)]
            for name, used in self.cpu.items():
                out.append(f"| {name} | " + " | ".join(f"{used.get(p, 0) * 1000:.2f}"
                                                       for p in procs)
                           + f" | {sum(used.values()) * 1000:.2f} |")
        out += self.llm.markdown()
        load = os.getloadavg()
        out += ["", f"Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
                "(other work on the machine shows here).", ""]
        return "\n".join(out)

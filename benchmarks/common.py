"""Shared pieces of `make bench`: a result row with its goal, and timing helpers."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    name: str
    measured: float
    unit: str
    goal: str = ""  # e.g. "< 0.5", ">= 1.0"; empty for numbers reported without a goal
    detail: str = ""

    @property
    def verdict(self) -> str:
        if not self.goal:
            return ""
        op, _, bound = self.goal.partition(" ")
        value = float(bound)
        ok = {"<": self.measured < value, "<=": self.measured <= value,
              ">": self.measured > value, ">=": self.measured >= value}[op]
        return "pass" if ok else "FAIL"

    def row(self) -> str:
        number = f"{self.measured:,.0f}" if abs(self.measured) >= 1000 else f"{self.measured:.4g}"
        goal = f"{self.goal} {self.unit}" if self.goal else ""
        return f"| {self.name} | {number} {self.unit} | {goal} | {self.verdict} | {self.detail} |"


def median_wall_time(argv: list[str], repeats: int = 5, cwd: Path = ROOT) -> float:
    """Median seconds of a command, run `repeats` times after one warm-up."""
    subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]

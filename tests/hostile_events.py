"""Events that follow the line format but not the field contract: every kind of
tui_tune/events.py with each field missing, null, NaN, a string or absurdly large, as another
writer, an old version or a damaged file could leave them. Readers must show them, not crash."""

from __future__ import annotations

import json
from pathlib import Path

from tui_tune.events import KINDS, REQUIRED

MISSING = object()
# (label, value); NaN is written both as the writer's "nan" string and as a bare NaN literal
BAD_VALUES = (("missing", MISSING), ("null", None), ("nan", "nan"), ("NaN literal", float("nan")),
              ("inf", "inf"), ("string", "abc"), ("huge", 1e308), ("-huge", -1e308),
              ("huge int", 10 ** 30), ("huger int", 10 ** 400), ("bool", True),
              ("list", [1, 2]), ("object", {"a": 1}), ("negative", -5))
VALID: dict[str, dict] = {
    "start": {"run_id": "r", "world_size": 1, "devices": ["cpu"], "params_total": 10,
              "params_trainable": 10, "steps_total": 100, "train_rows": 10, "val_rows": 2},
    "step": {"step": 3, "epoch": 0.1, "loss": 2.0, "lr": 1e-3, "grad_norm": 1.0, "tokens": 64,
             "tokens_per_s": 900.0, "step_time_s": 0.1, "mem_allocated_gib": 0.1,
             "mem_reserved_gib": 0.2, "mem_peak_gib": 0.2},
    "eval": {"step": 3, "val_loss": 2.1, "perplexity": 8.0, "metric": "perplexity",
             "metric_value": 8.0},
    "sample": {"step": 3, "prompt": "p", "generation": "g", "reference": "r"},
    "checkpoint": {"step": 3, "path": "checkpoints/step-3", "reason": "last"},
    "log": {"level": "info", "message": "hello"},
    "end": {"status": "completed"},
}
assert set(VALID) == set(KINDS)
assert all(set(REQUIRED[kind]) <= set(VALID[kind]) for kind in KINDS)


def hostile_cases(t0: float = 1_767_225_600.0) -> list[tuple[str, dict]]:
    """(bad value's label, event): every kind bare ({"v":1,"kind":K}, label "bare"), then with
    each field (and `t`) set to each bad value."""
    cases: list[tuple[str, dict]] = [("bare", {"v": 1, "kind": kind}) for kind in KINDS]
    for kind in KINDS:
        for name in ("t", *VALID[kind]):  # the required fields and the usual others
            for label, value in BAD_VALUES:
                event = {"v": 1, "t": t0, "kind": kind, **VALID[kind]}
                if value is MISSING:
                    del event[name]
                else:
                    event[name] = value
                cases.append((label, event))
    return cases


def hostile_events(t0: float = 1_767_225_600.0) -> list[dict]:
    return [event for _, event in hostile_cases(t0)]


def write_lines(path: Path, events: list[dict]) -> Path:
    """One JSON line per event, as Python's json writes them (NaN as a bare literal)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(event) + "\n" for event in events)
    return path

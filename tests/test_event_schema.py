"""events.py is the whole event contract: the records name every field once, and every metric
(a float field of step or eval) reaches `ls --json`, the monitor's series and the chart pickers
of the monitor and compare without a list of its own anywhere else."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.hostile_events import VALID
from tui_tune import events
from tui_tune.events import METRICS, REQUIRED, contract_problems, encode, make_event
from tui_tune.runs.summary import EventSummary, SummaryCache
from tui_tune.tui.monitor_view import chart_choices
from tui_tune.tui.run_data import load_run

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_767_225_600.0


def metric_values() -> dict[str, float]:
    """A distinct value per metric, so a value in the wrong place shows."""
    names = [name for kind in ("step", "eval") for name in METRICS[kind]]
    return {name: 1.25 + i for i, name in enumerate(names)}


def write_run(root: Path, values: dict[str, float]) -> Path:
    run_dir = root / "20260101-000000-schema"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_dir.name, "created_at": T0}))
    lines = [make_event("start", **VALID["start"])]
    for kind in ("step", "eval"):
        lines.append(make_event(kind, **{**VALID[kind], **{name: values[name]
                                                           for name in METRICS[kind]}}))
    lines.append(make_event("end", status="completed"))
    (run_dir / "events.jsonl").write_text("".join(encode(e) for e in lines))
    return run_dir


def test_required_fields_and_metrics_come_from_the_records():
    assert REQUIRED["step"] == ("step", "epoch", "loss", "lr", "grad_norm", "tokens",
                                "tokens_per_s", "step_time_s", "mem_allocated_gib",
                                "mem_reserved_gib", "mem_peak_gib")
    assert REQUIRED["eval"] == ("step", "val_loss", "metric", "metric_value")
    assert list(METRICS["eval"]) == ["val_loss", "metric_value", "perplexity", "accuracy", "auc",
                                     "logloss", "f1", "precision", "recall", "mse", "mae", "r2",
                                     "exact_match",
                                     "preference_accuracy", "reward_margin", "rewards_chosen",
                                     "rewards_rejected", "logps_chosen", "logps_rejected",
                                     "rouge1", "rouge2", "rougeL", "bleu", "chrf", "llm_judge",
                                     "reward"]
    assert "tokens" not in METRICS["step"] and "step" not in METRICS["step"]  # counts
    assert not set(METRICS["step"]) & set(METRICS["eval"])  # one name, one meaning
    for kind in REQUIRED:
        assert contract_problems(make_event(kind, **VALID[kind])) == []


def test_contract_problems_names_a_value_of_the_wrong_type():
    step = make_event("step", **{**VALID["step"], "tokens": 1.5, "loss": "nan", "lr": "x"})
    assert contract_problems(step) == ["step: lr 'x': Expected `float`, got `str`",
                                       "step: tokens 1.5: Expected `int`, got `float`"]


def test_a_reader_can_only_ask_for_fields_of_the_contract():
    try:
        events.reader_struct("Typo", numbers=["los"])
    except ValueError as error:
        assert "los not in the event contract" in str(error)
    else:
        raise AssertionError("a misspelt field was accepted")


def test_every_metric_reaches_ls_json_the_series_and_the_chart_pickers(tmp_path):
    values = metric_values()
    run_dir = write_run(tmp_path / "runs", values)
    listed = subprocess.run([sys.executable, "-m", "tui_tune", "ls", "--json", "--runs-dir",
                             str(tmp_path / "runs")], capture_output=True, text=True,
                            check=True, timeout=120, cwd=ROOT)
    (row,) = json.loads(listed.stdout)
    assert row["metrics"] == values
    series, _ = load_run(run_dir)
    for name, value in values.items():
        column = (series.step_values(name) if name in METRICS["step"]
                  else series.eval_values(name))
        assert column.tolist() == [value], name
    assert [key for key, _ in chart_choices()] == \
        [f"{kind}.{name}" for kind in ("step", "eval") for name in METRICS[kind]]


# A child process whose events.py has one line more (a metric in eval and one in step), as a
# developer would add it; everything else is the code as it is.
ONE_LINE_MORE = textwrap.dedent('''
    import asyncio, contextlib, io, json, runpy, sys, types
    from pathlib import Path
    import tui_tune
    path = Path(tui_tune.__file__).parent / "events.py"
    source = path.read_text().splitlines(keepends=True)
    for anchor, line in (("    metric_value: ", "    top5_accuracy: float | None = None\\n"),
                         ("    mem_peak_gib: Annotated", "    tokens_dropped: float = 0.0\\n")):
        at = next(i for i, text in enumerate(source) if text.startswith(anchor))
        source.insert(at + 1, line)
    module = types.ModuleType("tui_tune.events")
    module.__file__ = str(path)
    sys.modules["tui_tune.events"] = tui_tune.events = module
    exec(compile("".join(source), str(path), "exec"), module.__dict__)

    from tui_tune.events import encode, make_event
    from tui_tune.tui.monitor_view import chart_choices
    from tui_tune.tui.run_data import load_run
    run_dir, values = Path(sys.argv[1]), json.loads(sys.argv[2])
    with open(run_dir / "events.jsonl", "a") as handle:
        handle.write(encode(make_event("eval", step=4, top5_accuracy=0.75, **values["eval"])))
        handle.write(encode(make_event("step", step=5, tokens_dropped=3.5, **values["step"])))
    out = io.StringIO()
    sys.argv = ["tui-tune", "ls", "--json", "--runs-dir", str(run_dir.parent)]
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        runpy.run_module("tui_tune", run_name="__main__")
    series, _ = load_run(run_dir)

    async def pick(screen_factory, chart_id, label):
        from tui_tune.tui.app import TuneApp
        from tui_tune.tui.screens.dialogs import ChoiceDialog
        app = TuneApp(start=screen_factory)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(200):
                await pilot.pause(0.05)
                if app.screen.query(chart_id) and app.screen.query_one(chart_id).series:
                    break
            screen = app.screen
            await pilot.press("g")  # pick chart
            await pilot.pause(0.3)
            assert isinstance(app.screen, ChoiceDialog)
            options = app.screen.query_one("OptionList")
            labels = [str(options.get_option_at_index(i).prompt)
                      for i in range(options.option_count)]
            options.highlighted = labels.index(label)
            await pilot.press("enter")
            await pilot.pause(0.3)
            chart = screen.query_one(chart_id)
            return chart.title, [s.y.tolist() for s in chart.series.values()]

    from tui_tune.tui.screens.compare import CompareScreen
    from tui_tune.tui.screens.monitor import MonitorScreen
    monitor = asyncio.run(pick(lambda: MonitorScreen(run_dir, sample_gpus=False),
                               "#chart-metric", "top5_accuracy (eval)"))
    compare = asyncio.run(pick(lambda: CompareScreen([run_dir, run_dir]), "#compare-train",
                               "tokens_dropped"))
    print(json.dumps({"ls": json.loads(out.getvalue())[0]["metrics"],
                      "series": [series.eval_values("top5_accuracy").tolist(),
                                 series.step_values("tokens_dropped").tolist()],
                      "choices": [key for key, _ in chart_choices()],
                      "monitor": monitor, "compare": compare}))
''')


def test_a_new_metric_is_one_line_in_the_schema(tmp_path, monkeypatch):
    values = metric_values()
    run_dir = write_run(tmp_path / "runs", values)
    by_kind = {kind: {**{k: v for k, v in VALID[kind].items() if k != "step"},
                      **{n: values[n] for n in METRICS[kind]}} for kind in ("step", "eval")}
    monkeypatch.setenv("TUI_TUNE_CONFIG_DIR", str(tmp_path / "config"))
    done = subprocess.run([sys.executable, "-c", ONE_LINE_MORE, str(run_dir),
                           json.dumps(by_kind)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["ls"]["top5_accuracy"] == 0.75 and seen["ls"]["tokens_dropped"] == 3.5
    (accuracy, dropped) = seen["series"]  # the first eval and step were written without them
    assert math.isnan(accuracy[0]) and accuracy[1:] == [0.75]
    assert math.isnan(dropped[0]) and dropped[1:] == [3.5]
    choices = seen["choices"]  # where the line went in the record
    assert choices.index("eval.top5_accuracy") == choices.index("eval.metric_value") + 1
    assert choices.index("step.tokens_dropped") == choices.index("step.mem_peak_gib") + 1
    title, lines = seen["monitor"]
    assert title == "top5_accuracy" and [line[1:] for line in lines] == [[0.75]]
    title, lines = seen["compare"]
    assert title == "tokens_dropped" and [line[1:] for line in lines] == [[3.5], [3.5]]


def test_the_summary_finds_a_metric_last_written_long_before(tmp_path):
    """A metric is taken from the latest step that holds it, however far back in the file
    (a block's last step lines are read first, the rest only for what they lacked)."""
    steps = [{**VALID["step"], "step": s, "grad_norm": 0.5 if s == 1 else None,
              "loss": float(s)} for s in range(1, 301)]
    lines = [make_event("start", **VALID["start"]), *(make_event("step", **s) for s in steps)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(encode(e) for e in lines))
    from_dicts = EventSummary()
    from_dicts.update(lines)
    for summary in (SummaryCache(persist=False).summary(path), from_dicts):
        assert (summary.step, summary.last_grad_norm, summary.last_loss) == (300, 0.5, 300.0)
        assert summary.metrics == {**{n: VALID["step"][n] for n in METRICS["step"]
                                      if n in VALID["step"]},
                                   "grad_norm": 0.5, "loss": 300.0}

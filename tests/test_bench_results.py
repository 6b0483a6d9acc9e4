"""`python -m benchmarks --write`: a whole run rewrites its machine's table, a partial one
(--only / --cases) replaces only the rows of what it re-measured."""

from __future__ import annotations

from benchmarks.bench_trainer import GPU_CASES, chosen
from benchmarks.common import Result
from benchmarks.results_file import write_results

BEFORE = """# Benchmark results

Text above that must stay.

<!-- gpu -->
Measured 2026-11-01 on an older box.

| benchmark | measured | goal | verdict | detail |
|---|---|---|---|---|
| trainer gpu lora r16: worker tokens/s | 35,200 tok/s |  |  |  |
| trainer gpu lora r16: worker / Trainer | 1.105 x | >= 1.0 x | pass |  |
| trainer gpu lora r16 dropout 0: worker tokens/s | 50,000 tok/s |  |  |  |
| trainer gpu dora r16 | nan  |  |  | not measured yet |
<!-- gpu -->

Text below that must stay.
"""


def rows_of(text: str) -> list[str]:
    return [line.split(" | ")[0][2:] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| benchmark")]


def test_partial_write_replaces_only_the_remeasured_benchmark(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    write_results([Result("trainer gpu dora r16: worker tokens/s", 11000.0, "tok/s"),
                   Result("trainer gpu dora r16: worker / Trainer", 1.02, "x", ">= 1.0")],
                  gpu=True, partial=True, path=path, where="a test box")
    text = path.read_text()
    assert rows_of(text) == ["trainer gpu lora r16: worker tokens/s",
                             "trainer gpu lora r16: worker / Trainer",
                             "trainer gpu lora r16 dropout 0: worker tokens/s",
                             "trainer gpu dora r16: worker tokens/s",
                             "trainer gpu dora r16: worker / Trainer"]
    assert "not measured yet" not in text and "11,000 tok/s" in text
    assert "Measured 2026-11-01 on an older box." in text  # the kept rows' provenance stays
    assert "on a test box: trainer gpu dora r16." in text  # and the new rows' too

    write_results([Result("trainer gpu lora r16: worker tokens/s", 36000.0, "tok/s"),
                   Result("trainer gpu qlora nf4: worker tokens/s", 20000.0, "tok/s")],
                  gpu=True, partial=True, path=path, where="an older box")
    text = path.read_text()
    assert rows_of(text) == ["trainer gpu lora r16: worker tokens/s",  # in place, not moved
                             "trainer gpu lora r16 dropout 0: worker tokens/s",
                             "trainer gpu dora r16: worker tokens/s",
                             "trainer gpu dora r16: worker / Trainer",
                             "trainer gpu qlora nf4: worker tokens/s"]
    assert "on the same machine: trainer gpu lora r16, trainer gpu qlora nf4." in text
    assert "on a test box: trainer gpu dora r16." in text  # earlier notes stay
    assert text.startswith("# Benchmark results\n\nText above") and "Text below that must stay." in text


def test_whole_write_replaces_the_table_and_leaves_the_other_machine(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    write_results([Result("cli --help", 0.07, "s", "< 0.5")], gpu=False, path=path, where="a test box")
    write_results([Result("trainer gpu full bf16: worker tokens/s", 42000.0, "tok/s")],
                  gpu=True, path=path, where="a test box")
    text = path.read_text()
    assert rows_of(text) == ["trainer gpu full bf16: worker tokens/s", "cli --help"]
    assert text.count("<!-- cpu -->") == 2 and "| cli --help | 0.07 s | < 0.5 s | pass |" in text
    assert "older box" not in text


def test_cases_pick_a_whole_label_else_every_label_with_the_word():
    assert chosen(GPU_CASES, ["full bf16"]) == ["gpu full bf16"]
    assert chosen(GPU_CASES, ["lora"]) == ["gpu lora r16", "gpu lora r16 dropout 0",
                                           "gpu qlora nf4"]
    assert chosen(GPU_CASES, None) == list(GPU_CASES)


NOTED = """# Benchmark results

<!-- cpu -->
Measured 2026-11-01 on a test box.
Re-measured 2026-11-02 on the same machine while other jobs shared it: ls rows (added by hand).
The ls rows were timed by hand.

| benchmark | measured | goal | verdict | detail |
|---|---|---|---|---|
| ls in a new process | 2.6 s |  |  |  |
| runs screen, 10 runs: rows drawn | 0.6 s |  |  |  |
| runs screen, 1,000 runs: rows drawn | 1.2 s | < 1 s | FAIL |  |
| app first frame | 0.5 s | < 1 s | pass |  |

A note under the table.
<!-- cpu -->
"""
HAND_WRITTEN = [("Re-measured 2026-11-02 on the same machine while other jobs shared it: ls rows "
                "(added by hand)."), "The ls rows were timed by hand.", "A note under the table."]
APP = [Result("app first frame", 0.4, "s", "< 1"),
       Result("runs screen, 10 runs: rows drawn", 0.6, "s"),
       Result("runs screen, 1,000 runs: rows drawn", 0.8, "s", "< 1")]


def provenance(text: str) -> list[str]:
    return [line for line in text.splitlines() if "easured 20" in line]


def test_partial_writes_keep_lines_they_did_not_write_and_replace_their_own(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(NOTED)
    for _ in range(2):  # the same benchmarks twice: one line names them, not two
        write_results(APP, gpu=False, partial=True, path=path, where="a test box")
    text = path.read_text()
    assert all(line in text.splitlines() for line in HAND_WRITTEN)
    today = provenance(text)[-1].split(" on ")[0]
    assert provenance(text) == [
        "Measured 2026-11-01 on a test box.", HAND_WRITTEN[0],
        (f"{today} on the same machine: app first frame, runs screen, 10 runs, "
        "runs screen, 1,000 runs.")]
    # re-measuring some of a line's benchmarks takes them off that line
    write_results(APP[1:2], gpu=False, partial=True, path=path, where="another box")
    assert provenance(path.read_text())[2:] == [
        f"{today} on the same machine: app first frame, runs screen, 1,000 runs.",
        f"{today} on another box: runs screen, 10 runs."]
    assert "| runs screen, 1,000 runs: rows drawn | 0.8 s | < 1 s | pass |  |" in path.read_text()
    assert path.read_text().count("\n\n") == NOTED.count("\n\n")  # no blank lines pile up


def test_whole_write_replaces_its_own_lines_and_keeps_the_others(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(NOTED)
    write_results(APP, gpu=False, partial=True, path=path, where="a test box")
    write_results(APP, gpu=False, path=path, where="a test box")
    text = path.read_text()
    assert provenance(text)[1:] == [HAND_WRITTEN[0]] and "2026-11-01" not in text
    assert all(line in text.splitlines() for line in HAND_WRITTEN)
    assert rows_of(text) == [r.name for r in APP]


def test_trainer_side_rates_count_the_same_steps_as_the_worker_side():
    """The Trainer side's tokens/s over steps skip+1..steps (micro-batches summed per step),
    and its median step's, which a burst of load on one step does not move."""
    from benchmarks.trainer_baseline import rates

    tokens = [5, 5, 10, 10, 10, 10, 10, 10, 10, 10]  # two micro-batches a step
    ends = [1.0, 2.0, 3.0, 9.0, 10.0]  # step 4 stalled for 6 s
    numbers = rates(tokens, ends, steps=5, skip=1, per_step=2)
    assert numbers["tokens_per_s"] == 80 / 9  # steps 2-5: 4 x 20 tokens in 1 + 1 + 6 + 1 s
    assert numbers["median_step_tokens_per_s"] == 20.0

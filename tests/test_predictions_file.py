"""Writing a predictions file (runs/predictions.py, no torch): the file appears whole or not at
all, an existing one is replaced only with force, and csv cells read back as the reader reads
training files."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from tui_tune.runs.datafiles import iter_rows
from tui_tune.runs.predictions import PredictError, partial_path, write_predictions

ROWS = [{"id": n, "prompt": f"question {n}"} for n in range(500)]


class Interrupting:
    """A cell whose text is asked for while the file is half written: Ctrl-C then."""

    def __str__(self) -> str:
        raise KeyboardInterrupt


def test_an_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    out = tmp_path / "p.csv"
    predictions = [{"prediction": "x"} for _ in ROWS]
    predictions[400] = {"prediction": Interrupting()}
    with pytest.raises(KeyboardInterrupt):
        write_predictions(ROWS, predictions, out)
    assert list(tmp_path.iterdir()) == []
    out.write_text("id,prompt,prediction\n1,old,kept\n")
    with pytest.raises(KeyboardInterrupt):
        write_predictions(ROWS, predictions, out, force=True)
    assert out.read_text() == "id,prompt,prediction\n1,old,kept\n"
    assert not partial_path(out).exists()


def test_a_file_that_appears_meanwhile_is_not_replaced_without_force(tmp_path):
    out = tmp_path / "p.csv"

    class Racing:
        def __str__(self) -> str:
            out.write_text("someone else's\n")
            return "y"

    with pytest.raises(PredictError) as raised:
        write_predictions(ROWS[:2], [{"prediction": Racing()}, {"prediction": "z"}], out)
    assert str(raised.value) == (f"--out {out}: already exists; pick another --out or add "
                                 "--force to replace it.")
    assert out.read_text() == "someone else's\n" and not partial_path(out).exists()
    written = write_predictions(ROWS[:2], [{"prediction": "a"}, {"prediction": "b"}], out,
                                force=True)
    assert [r["prediction"] for r in iter_rows(str(written))] == ["a", "b"]


def test_cells_read_back_as_training_files_are_read(tmp_path):
    rows = [{"tokens": ["Zoe", "left"], "note": None}, {"tokens": ["Bo"], "extra": 3}]
    predictions = [{"prediction": "B-PER O"}, {"prediction": "B-PER"}]
    back = list(iter_rows(str(write_predictions(rows, predictions, tmp_path / "p.csv"))))
    assert back == [{"tokens": "Zoe left", "note": None, "extra": None, "prediction": "B-PER O"},
                    {"tokens": "Bo", "note": None, "extra": "3", "prediction": "B-PER"}]
    table = pq.read_table(write_predictions(rows, predictions, tmp_path / "p.parquet"))
    assert table.column_names == ["tokens", "note", "extra", "prediction"]
    assert table.column("tokens").to_pylist() == [["Zoe", "left"], ["Bo"]]
    with pytest.raises(PredictError, match="not a format predictions are written in"):
        write_predictions(rows, predictions, tmp_path / "p.txt")

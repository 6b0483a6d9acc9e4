"""Predictions files: which weights predict, where the file goes, and writing it atomically.

Shared by `tui-tune predict` (which checks what it can before starting the model's process)
and the process that predicts (train/predict.py, also the worker for dataset.test_file), so
both refuse the same things with the same one-line messages. No torch here: pyarrow writes
parquet, the stdlib csv and JSON lines.

A predictions file holds every input column, then the prediction columns of the problem type
(train/tasks/: `prediction` or `prediction_<column>`, and `probability_<label>`). It is
written to <out>.partial and renamed, so a reader never sees half a file and an interrupted
prediction leaves none.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import Any

from tui_tune.rundir import RunDir, checkpoint_step
from tui_tune.runs.datafiles import DataFileError, check_rows, data_format
from tui_tune.runs.datasource import iter_source_rows
from tui_tune.runs.files import checkpoint_dirs
from tui_tune.runs.image_rows import images_base

# output suffix -> format
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json"}
PREDICTION_COLUMN = "prediction"  # the names every task's prediction columns start with
PROBABILITY_PREFIX = "probability_"
PARTIAL_SUFFIX = ".partial"


class PredictError(Exception):
    """A prediction that cannot be made as asked; `where` is the flag or setting to change."""

    def __init__(self, message: str, where: str, file: str | Path | None = None):
        self.message, self.where = message, where
        self.file = str(file) if file is not None else None
        super().__init__(f"{where}{f' {self.file}' if self.file else ''}: {message}")


def weights_folder(run_dir: Path, checkpoint: str | None = None) -> Path:
    """final/, or the complete checkpoint named `step-N`."""
    run = RunDir(run_dir)
    saved = checkpoint_dirs(run_dir)
    names = ", ".join(p.name for p in saved) or "none"
    if checkpoint is None:
        if not run.final.is_dir():
            raise PredictError(f"the run has no final/ weights (it did not complete); predict "
                               f"from a checkpoint with --checkpoint (it has: {names}).", "RUN",
                               run.root)
        return run.final
    step = checkpoint_step(Path(checkpoint))
    folder = run.checkpoint(step) if step is not None else None
    if folder is None or folder not in saved:
        raise PredictError(f"not a complete checkpoint of {run.root.name} (it has: {names}).",
                           "--checkpoint", checkpoint)
    if (folder / "accelerate").is_dir():
        raise PredictError("saved sharded (FSDP/DeepSpeed), as a resume point only; predict "
                           "from final/.", "--checkpoint", folder)
    return folder


def default_output(run_dir: Path, source: str | Path, checkpoint: str | None = None,
                   test_file: bool = False) -> Path:
    """In the run's folder: parquet for a parquet file, csv for the others."""
    suffix = ".parquet" if data_format(source) == "parquet" else ".csv"
    return RunDir(run_dir).predictions(suffix, None if test_file else str(source), checkpoint)


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + PARTIAL_SUFFIX)


def check_output(out: Path, force: bool, where: str = "--out") -> None:
    """A format tui-tune writes, a folder that exists, and no file replaced without force."""
    if Path(out).suffix.lower() not in OUTPUT_FORMATS:
        raise PredictError(f"'{Path(out).suffix}' is not a format predictions are written in; "
                           "use .csv, .parquet or .jsonl.", where, out)
    if not Path(out).parent.is_dir():
        raise PredictError("its folder does not exist.", where, out)
    if Path(out).exists() and not force:
        raise PredictError("already exists; pick another --out or add --force to replace it.",
                           where, out)


def is_prediction_column(name: str) -> bool:
    return name == PREDICTION_COLUMN or name.startswith((f"{PREDICTION_COLUMN}_",
                                                         PROBABILITY_PREFIX))


def check_input_columns(rows: list[dict[str, Any]], where: str, file: str | Path) -> None:
    """An input column named like a prediction column would be overwritten: refused."""
    for number, row in enumerate(rows, 1):
        clash = next((c for c in row if is_prediction_column(c)), None)
        if clash is not None:
            raise PredictError(f"row {number} has a column '{clash}', a name the predictions "
                               f"take ({PREDICTION_COLUMN}, {PREDICTION_COLUMN}_*, "
                               f"{PROBABILITY_PREFIX}*); rename or drop it.", where, file)


def read_input(path: str | Path, ds, problem_type: str, where: str,
               rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The rows to predict, read and checked as training files are, except that answers,
    labels and tags may be missing; `where` (the flag or setting) names the file. `rows`:
    already loaded (the worker's hub dataset or save_to_disk folder, train/data.py)."""
    try:
        rows = list(iter_source_rows(str(path), where, ds)) if rows is None else rows
        check_rows(rows, ds, problem_type, targets=False, images_base=images_base(str(path)))
    except DataFileError as error:
        message = f"{error.message.rstrip('.')}; see {error.setting}." if error.setting \
            else error.message
        raise PredictError(message, where, path) from None
    check_input_columns(rows, where, path)
    if problem_type == "multimodal_causal_lm":  # images relative to this file, wherever read
        rows = absolute_images(rows, ds.image_column, Path(path).parent)
    return rows


def absolute_images(rows: list[dict[str, Any]], column: str, base: Path) -> list[dict[str, Any]]:
    """The rows with their image cells as absolute paths (a list when the row names several)."""
    from tui_tune.runs.image_rows import row_images

    out = []
    for number, row in enumerate(rows, 1):
        paths = [str(p) for p in row_images(row, column, base, number)]
        out.append({**row, column: paths[0] if len(paths) == 1 else (paths or None)})
    return out


def write_predictions(rows: list[dict[str, Any]], predictions: list[dict[str, Any]], out: Path,
                      force: bool = False) -> Path:
    """Every input column and the prediction columns, row by row, into `out` (its suffix
    says the format), through out.partial: the file appears whole or not at all."""
    out = Path(out)
    check_output(out, force)
    columns = list(dict.fromkeys(c for row in rows for c in row))
    columns += list(dict.fromkeys(c for p in predictions for c in p))
    table = [{**row, **p} for row, p in zip(rows, predictions, strict=True)]
    partial = partial_path(out)
    try:
        WRITERS[OUTPUT_FORMATS[out.suffix.lower()]](table, columns, partial)
        _publish(partial, out, force)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return out


def _publish(partial: Path, out: Path, force: bool) -> None:
    """Rename into place; without force a hard link, which refuses a file that appeared
    meanwhile (a plain rename would replace it)."""
    if force:
        os.replace(partial, out)
        return
    try:
        os.link(partial, out)
    except FileExistsError:
        raise PredictError("already exists; pick another --out or add --force to replace it.",
                           "--out", out) from None
    except OSError:  # a file system without hard links
        if out.exists():
            raise PredictError("already exists; pick another --out or add --force to replace "
                               "it.", "--out", out) from None
        os.replace(partial, out)


def _csv_cell(value: Any) -> Any:
    """As the reader reads it back: missing is empty, a list of plain values is its items
    joined by spaces (token lists and tags), anything else nested is JSON."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            return " ".join(str(v) for v in value)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _write_csv(table: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        for row in table:
            writer.writerow([_csv_cell(row.get(c)) for c in columns])
        file.flush()
        os.fsync(file.fileno())


def _write_json(table: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False,
                                   default=str) + "\n" for row in table)
        file.flush()
        os.fsync(file.fileno())


def _write_parquet(table: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = pa.table({c: [row.get(c) for row in table] for c in columns})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise PredictError(f"cannot be written as parquet ({error}): a column mixes kinds of "
                           "values; write a .csv or .jsonl instead.", "--out") from None
    pq.write_table(data, path)


WRITERS = {"csv": _write_csv, "json": _write_json, "parquet": _write_parquet}

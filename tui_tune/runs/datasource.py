"""Where a dataset setting's rows come from: a data file, a dataset folder, or a hub dataset id.

A folder is either what `datasets`' save_to_disk wrote (a Dataset: state.json and arrow files;
a DatasetDict: dataset_dict.json and one such folder per split) or a folder of .csv, .parquet
or .jsonl files, whose split is told from their names as `datasets` tells it (train, test,
validation / valid / dev / val in a file or folder name; no such name: all are train). A hub id
(org/name) is read by the worker with `datasets.load_dataset`; here, without `datasets` (the
app never imports it), its rows are read only when it is in the local datasets cache, from the
arrow files `datasets` prepared there. Everything is read with pyarrow and the file reader of
runs/datafiles.py, so a folder's cells are checked as a file's are.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tui_tune.runs import layouts
from tui_tune.runs.datafiles import FORMATS, DataFileError, iter_rows

FILE, FOLDER, HUB = "file", "folder", "hub"
HUB_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
SPLIT_SETTING = {"dataset.train_file": "dataset.train_split",
                 "dataset.validation_file": "dataset.validation_split",
                 "dataset.test_file": "dataset.test_split"}
# datasets.data_files.SPLIT_KEYWORDS: the words naming a split in a file or folder name
SPLIT_WORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
               "test": ("test", "testing", "eval", "evaluation")}
NOT_WORD = r"[-._ 0-9]"


class NeedsWorker(DataFileError):
    """The rows cannot be read here (a hub dataset not in the local cache): the worker reads
    them after downloading; checks that need rows say so instead of failing."""


def is_hub_id(text: str) -> bool:
    """org/name that is no path here and no data file name (train.jsonl is a missing file)."""
    return (bool(HUB_DATASET.match(text)) and ".." not in text
            and Path(text).suffix.lower() not in FORMATS
            and not Path(text).expanduser().exists())


def source_kind(text: str) -> str:
    path = Path(text).expanduser()
    if text and path.is_dir():
        return FOLDER
    return HUB if text and is_hub_id(text) else FILE


def split_of(setting: str, ds) -> str:
    """The split a file setting reads from a hub dataset or a dataset folder."""
    name = SPLIT_SETTING.get(setting, "dataset.train_split").removeprefix("dataset.")
    return getattr(ds, name, None) or "train" if ds is not None else "train"


def iter_source_rows(text: str, setting: str = "dataset.train_file",
                     ds=None) -> Iterator[dict[str, Any]]:
    """The rows a dataset setting names, as dicts; DataFileError (NeedsWorker for a hub
    dataset that is not cached here) when they cannot be read."""
    kind = source_kind(text)
    if kind == FILE:
        yield from iter_rows(text)
        return
    split = split_of(setting, ds)
    if kind == FOLDER:
        yield from folder_rows(Path(text).expanduser(), split, SPLIT_SETTING.get(setting))
        return
    cached = cached_hub_folder(text, getattr(ds, "subset", "") if ds is not None else "")
    if cached is None:
        raise NeedsWorker(f"'{text}' is a hub dataset that is not in the local datasets cache "
                          f"({datasets_cache()}): its rows are read by the worker, which "
                          "downloads it.")
    yield from _cached_hub_rows(cached, text, split, SPLIT_SETTING.get(setting))


def source_size(text: str, ds=None) -> tuple[str, int, int] | None:
    """What changes when the data does (path, bytes, newest mtime), for caches of what was
    read; None for a hub dataset that is not cached. OSError when a file cannot be seen."""
    path = Path(text).expanduser()
    if source_kind(text) == HUB:
        path = cached_hub_folder(text, getattr(ds, "subset", "") if ds is not None else "")
        if path is None:
            return None
    if path.is_file() or not path.exists():
        stat = path.stat()
        return str(path.resolve()), stat.st_size, stat.st_mtime_ns
    files = [p.stat() for p in path.rglob("*") if p.is_file()]
    return (str(path.resolve()), sum(s.st_size for s in files),
            max((s.st_mtime_ns for s in files), default=0))


# -- folders -------------------------------------------------------------------------------------
def folder_rows(folder: Path, split: str, split_setting: str | None) -> Iterator[dict[str, Any]]:
    if (folder / "dataset_dict.json").is_file():
        splits = _dict_splits(folder)
        if split not in splits:
            raise DataFileError(f"the dataset folder has no split '{split}' (it has: "
                                f"{', '.join(splits)}).", split_setting)
        folder = folder / split
    if (folder / "state.json").is_file():
        yield from _arrow_rows(_saved_arrow_files(folder))
        return
    files = data_files(folder, split)
    if not files:
        found = _split_names(folder)
        detail = (f"no files of split '{split}' (it has: {', '.join(found)})" if found
                  else f"no {', '.join(sorted(set(FORMATS)))} files")
        raise DataFileError(f"the folder holds {detail} and is not a datasets.save_to_disk "
                            "folder.", split_setting if found else None)
    empty = True
    for file in files:
        try:
            for row in iter_rows(str(file)):
                empty = False
                yield row
        except DataFileError as error:
            raise DataFileError(f"{file.relative_to(folder)}: {error.message}",
                                error.setting) from None
    if empty:
        raise DataFileError("the folder's files have no rows.")


def _dict_splits(folder: Path) -> list[str]:
    try:
        splits = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataFileError(f"dataset_dict.json cannot be read ({error}).") from None
    return [str(s) for s in splits]


def _saved_arrow_files(folder: Path) -> list[Path]:
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        return [folder / entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataFileError(f"state.json cannot be read ({error}); save the dataset again "
                            "with save_to_disk.") from None


def _arrow_rows(files: list[Path]) -> Iterator[dict[str, Any]]:
    """Rows of the arrow stream files `datasets` writes (save_to_disk and its cache)."""
    import pyarrow as pa

    empty = True
    for file in files:
        try:
            with pa.OSFile(str(file), "rb") as source:
                for batch in pa.ipc.open_stream(source):
                    for row in batch.to_pylist():
                        empty = False
                        yield row
        except (pa.ArrowException, OSError) as error:
            raise DataFileError(f"{file.name} cannot be read as arrow ({error}).") from None
    if empty:
        raise DataFileError("the dataset has no rows.")


def data_files(folder: Path, split: str) -> list[Path]:
    """The folder's data files of this split, in name order: those whose folder or file name
    says the split (as `datasets` reads such a folder); when none says any split, all of them
    are the train split."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    named = {f: _named_split(f.relative_to(folder)) for f in files}
    if not any(named.values()):
        return files if split == "train" else []
    return [f for f in files if named[f] == split]


def _split_names(folder: Path) -> list[str]:
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS]
    return sorted({s for f in files if (s := _named_split(f.relative_to(folder)))})


def _named_split(relative: Path) -> str | None:
    """The split a folder name, else the file name, says (datasets' keyword patterns)."""
    for names in ([str(p) for p in relative.parts[:-1]], [relative.name]):
        for split, words in SPLIT_WORDS.items():
            pattern = re.compile(rf"(^|{NOT_WORD})({'|'.join(words)})({NOT_WORD}|$)")
            if any(pattern.search(name) for name in names):
                return split
    return None


# -- the local datasets cache --------------------------------------------------------------------
def datasets_cache() -> Path:
    """Where `datasets` keeps prepared datasets (datasets.config.HF_DATASETS_CACHE)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    from huggingface_hub import constants
    return Path(constants.HF_HOME).expanduser() / "datasets"


def snake_case(name: str) -> str:
    """datasets.naming.camelcase_to_snakecase: how its cache spells a dataset's name."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def cached_hub_folder(dataset_id: str, subset: str = "") -> Path | None:
    """The newest folder `datasets` prepared for this hub id (and subset) in its cache, as its
    offline mode finds it (<org>___<name>/<config>/<version>/<hash>); None when not cached."""
    org, name = dataset_id.split("/", 1)
    name = snake_case(name)
    root = datasets_cache() / f"{org}___{name}"
    configs = [p for p in root.glob("*") if p.is_dir()]
    if subset:
        configs = [p for p in configs if p.name == subset]
    found = [p for config in configs for p in config.glob("*/*")
             if p.is_dir() and (p / "dataset_info.json").is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _cached_hub_rows(folder: Path, dataset_id: str, split: str,
                     split_setting: str | None) -> Iterator[dict[str, Any]]:
    files = sorted(folder.glob("*.arrow"))
    of_split = [f for f in files if re.search(rf"-{re.escape(split)}(-\d+-of-\d+)?\.arrow$",
                                              f.name)]
    if not of_split:
        have = sorted({m.group(1) for f in files
                       if (m := re.search(r"-([^-]+?)(-\d+-of-\d+)?\.arrow$", f.name))})
        raise DataFileError(f"the cached hub dataset '{dataset_id}' has no split '{split}' "
                            f"(it has: {', '.join(have)}).", split_setting)
    yield from _arrow_rows(of_split)


def source_layout(text: str, ds, problem_type: str = "causal_lm",
                  setting: str = "dataset.train_file") -> str:
    """The layout a source's rows are read in (dataset.format, auto told from the first row's
    columns); columns for rows that cannot be read here (their checks say why)."""
    if problem_type != "causal_lm":
        return layouts.COLUMNS
    if ds.format != "auto":
        return ds.format
    try:
        first = next(iter_source_rows(text, setting, ds), {})
    except DataFileError:
        return layouts.COLUMNS
    return layouts.detect_format(first, ds)

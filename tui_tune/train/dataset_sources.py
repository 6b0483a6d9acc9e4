"""Rows of a hub dataset id or a datasets.save_to_disk folder, loaded with `datasets` (the
worker side: the app never imports it). Files and folders of files are read by
runs/datasource.py, the reader the preflight uses. Errors a user can cause (no such dataset,
split or subset) end as a UserError naming the setting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tui_tune.runs.datasource import SPLIT_SETTING, cached_hub_folder, datasets_cache, split_of
from tui_tune.runs.hub_backbone import hub_unavailable
from tui_tune.train.errors import UserError


def is_saved_dataset(folder: Path) -> bool:
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def load_saved_rows(text: str, setting: str, ds) -> list[dict[str, Any]]:
    """A save_to_disk folder: a Dataset, or a DatasetDict's split."""
    import datasets

    split = split_of(setting, ds)
    try:
        loaded = datasets.load_from_disk(str(Path(text).expanduser()))
    except (FileNotFoundError, ValueError) as error:
        raise UserError(f"cannot be loaded with datasets.load_from_disk ({error}).", setting,
                        text) from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise UserError(f"the dataset folder has no split '{split}' (it has: "
                            f"{', '.join(loaded)}).", SPLIT_SETTING.get(setting, setting), text)
        loaded = loaded[split]
    return _rows(loaded, setting, text)


def load_hub_rows(text: str, setting: str, ds) -> list[dict[str, Any]]:
    """A hub dataset's split (downloaded, or from the local cache offline)."""
    import datasets

    split = split_of(setting, ds)
    subset, revision = getattr(ds, "subset", "") or None, getattr(ds, "revision", "") or None
    try:
        with offline_when_cached_and_unreachable(text, subset or ""):
            # the cache the preflight looked in (runs/datasource.py), as this process sees it
            loaded = datasets.load_dataset(text, name=subset, split=split, revision=revision,
                                           cache_dir=str(datasets_cache()))
    except ValueError as error:  # an unknown split or subset
        message = str(error)
        where = ("dataset.subset" if subset and "config" in message.lower()
                 else SPLIT_SETTING.get(setting, setting))
        raise UserError(f"the hub dataset cannot be read as set ({message}).", where,
                        text) from None
    except (OSError, ConnectionError) as error:  # not found, or the hub not reachable
        raise UserError(f"the hub dataset cannot be loaded ({type(error).__name__}: "
                        f"{error}); check the id, or download it where the hub can be "
                        "reached and point the setting at a saved folder.", setting,
                        text) from None
    return _rows(loaded, setting, text)


@contextmanager
def offline_when_cached_and_unreachable(dataset_id: str, subset: str) -> Iterator[None]:
    """A cached hub dataset while the hub cannot be reached (and HF_HUB_OFFLINE is not set):
    `datasets` would retry the hub for half a minute or more before it falls back to its
    cache; read the cache at once, as HF_HUB_OFFLINE would."""
    import datasets
    from huggingface_hub import constants

    if cached_hub_folder(dataset_id, subset) is None or hub_unavailable() is None:
        yield
        return
    before = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = before


def _rows(loaded, setting: str, text: str) -> list[dict[str, Any]]:
    rows = loaded.to_list()
    if not rows:
        raise UserError("the dataset has no rows.", setting, text)
    return rows

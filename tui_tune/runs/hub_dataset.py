"""Whether a hub dataset named by a dataset setting can be had here: in the local datasets
cache, or the hub reachable (the same quick look as for a hub backbone, runs/hub_backbone.py).

Offline, `datasets.load_dataset` would fail in the worker after its retries with a connection
error naming neither the setting nor what to do; this says it before launch, in one line.
"""

from __future__ import annotations

from tui_tune.config import Problem
from tui_tune.runs.datasource import HUB, cached_hub_folder, datasets_cache, source_kind
from tui_tune.runs.hub_backbone import hub_unavailable


def hub_dataset_problems(value: str, setting: str, ds) -> list[Problem]:
    """A problem naming `setting` when it names a hub dataset that is neither in the local
    datasets cache nor downloadable now."""
    if not value or source_kind(value) != HUB:
        return []
    subset = getattr(ds, "subset", "")
    if cached_hub_folder(value, subset) is not None:
        return []
    why = hub_unavailable()
    if why is None:
        return []
    named = f"'{value}'" + (f" (subset '{subset}')" if subset else "")
    return [Problem(setting, f"{named} is a hub dataset that is not in the local "
                    f"datasets cache ({datasets_cache()}) and cannot be downloaded now ({why}): "
                    "on a machine that reaches the hub, save it with `datasets` (load_dataset("
                    f"'{value}').save_to_disk('FOLDER')) and point {setting} at that folder, or "
                    "load it there once and copy its cache here (HF_HOME / HF_DATASETS_CACHE) "
                    "with HF_HUB_OFFLINE=1.")]

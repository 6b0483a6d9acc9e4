"""Dataset folders and a pre-filled datasets cache built with `datasets` itself, offline, for
the tests of hub dataset ids and dataset folders (runs/datasource.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tui_tune.runs.datasource import snake_case


def save_dataset(rows: list[dict], folder: Path, splits: dict[str, list[dict]] | None = None
                 ) -> Path:
    """datasets' save_to_disk: one Dataset (rows), or a DatasetDict of `splits`."""
    from datasets import Dataset, DatasetDict

    if splits is None:
        Dataset.from_list(rows).save_to_disk(str(folder))
    else:
        DatasetDict({name: Dataset.from_list(part) for name, part in splits.items()}
                    ).save_to_disk(str(folder))
    return folder


def parquet_folder(folder: Path, splits: dict[str, list[dict]]) -> Path:
    """A folder of parquet files as the hub keeps them: data/<split>-00000-of-00001.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "data").mkdir(parents=True)
    for name, rows in splits.items():
        pq.write_table(pa.Table.from_pylist(rows),
                       folder / "data" / f"{name}-00000-of-00001.parquet")
    return folder


def fill_datasets_cache(cache: Path, dataset_id: str, splits: dict[str, list[dict]],
                        work: Path) -> Path:
    """What `load_dataset(dataset_id)` leaves in HF_DATASETS_CACHE once downloaded: the arrow
    files `datasets` prepared, under <org>___<name>/default/0.0.0/<hash>, which its offline
    mode finds. Built by the same parquet builder a hub load uses, from local files."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    org, name = dataset_id.split("/")
    name = snake_case(name)
    files = parquet_folder(work / "hub-files", splits) / "data"
    builder = Parquet(dataset_name=name, cache_dir=str(work / "build"), hash="0" * 16,
                      data_files={s: str(files / f"{s}-00000-of-00001.parquet")
                                  for s in splits})
    builder.download_and_prepare()
    target = cache / f"{org}___{name}" / "default" / "0.0.0"
    target.mkdir(parents=True)
    shutil.move(builder.cache_dir, target / ("0" * 16))
    return target / ("0" * 16)

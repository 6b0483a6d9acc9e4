"""Hugging Face dataset ids and dataset folders besides files (issue 20): every reader of rows
(the preflight's column checks, the editor's preview, estimate's token counting, the worker)
reads a save_to_disk folder, a folder of parquet files and a hub dataset from the local
datasets cache; a hub dataset that can be had neither from the cache nor the hub now is one
clear preflight line naming the setting and the id."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_folders import fill_datasets_cache, parquet_folder, save_dataset
from huggingface_hub import constants

from tui_tune.config.presets import resolve
from tui_tune.runs.data_preview import PreviewError, preview
from tui_tune.runs.datasource import FOLDER, HUB, iter_source_rows, source_kind
from tui_tune.runs.estimate.duration import DataSizeError, data_size
from tui_tune.runs.preflight import preflight

ROWS = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(12)]
HELD_OUT = [{"prompt": "What is 9 + 1?", "answer": "10"}]
FAKE_ID = "nobody-here/no-such-dataset"
CACHED_ID = "someorg/Tiny-Sums"


@pytest.fixture
def offline(tmp_path, monkeypatch, preset_workdir) -> Path:
    """HF_HUB_OFFLINE with an empty datasets cache of this test's own."""
    cache = tmp_path / "datasets-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    import datasets  # read at its import: this process may have imported it before
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return cache


def dataset_problems(*sets: str) -> list[tuple[str, str]]:
    exp = resolve("demo-tiny", list(sets)).experiment
    return [(p.key, p.message) for p in preflight(exp, cuda_devices=0)
            if p.key.startswith("dataset.")]


def test_offline_hub_id_is_one_line_naming_the_setting_the_id_and_what_to_do(offline):
    problems = dataset_problems(f'dataset.train_file="{FAKE_ID}"')
    assert len(problems) == 1
    setting, message = problems[0]
    assert setting == "dataset.train_file" and FAKE_ID in message
    assert "HF_HUB_OFFLINE is set" in message and str(offline) in message
    assert "save_to_disk" in message and "HF_HUB_OFFLINE=1" in message
    assert "\n" not in message


def test_an_unreachable_hub_is_said_the_same_way(offline, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    (problem,) = dataset_problems(f'dataset.train_file="{FAKE_ID}"')
    assert "127.0.0.1:9 cannot be reached" in problem[1] and FAKE_ID in problem[1]


def test_a_hub_dataset_in_the_local_cache_is_read_offline(offline, tmp_path):
    fill_datasets_cache(offline, CACHED_ID, {"train": ROWS, "validation": HELD_OUT}, tmp_path)
    assert source_kind(CACHED_ID) == HUB
    assert dataset_problems(f'dataset.train_file="{CACHED_ID}"') == []
    exp = resolve("demo-tiny", [f'dataset.train_file="{CACHED_ID}"']).experiment
    assert list(iter_source_rows(CACHED_ID, "dataset.train_file", exp.dataset)) == ROWS
    assert list(iter_source_rows(CACHED_ID, "dataset.validation_file",
                                 exp.dataset)) == HELD_OUT
    assert preview(exp).rows_read == len(ROWS)  # the editor's preview (F6)
    assert data_size(exp).rows == len(ROWS)  # estimate's token counting
    # the columns are checked before launch from the cached rows, naming the setting
    ((setting, message),) = dataset_problems(f'dataset.train_file="{CACHED_ID}"',
                                             'dataset.answer_column="output"')
    assert setting == "dataset.answer_column" and "'output'" in message
    # a split the cache does not hold names its setting
    ((setting, message),) = dataset_problems(f'dataset.train_file="{CACHED_ID}"',
                                             'dataset.train_split="test"')
    assert setting == "dataset.train_split" and "train, validation" in message


def test_a_hub_dataset_not_cached_says_the_worker_reads_it(offline):
    exp = resolve("demo-tiny", [f'dataset.train_file="{FAKE_ID}"']).experiment
    with pytest.raises(PreviewError, match="read by the worker"):
        preview(exp)
    with pytest.raises(DataSizeError, match="counted by the worker"):
        data_size(exp)


def test_save_to_disk_and_parquet_folders_are_read_and_checked(tmp_path, preset_workdir):
    one = save_dataset(ROWS, tmp_path / "saved")
    both = save_dataset([], tmp_path / "saved-dict", {"train": ROWS, "validation": HELD_OUT})
    files = parquet_folder(tmp_path / "parquet", {"train": ROWS, "test": HELD_OUT})
    for folder in (one, both, files):
        assert source_kind(str(folder)) == FOLDER
        exp = resolve("demo-tiny", [f'dataset.train_file="{folder}"']).experiment
        assert list(iter_source_rows(str(folder), "dataset.train_file", exp.dataset)) == ROWS
        assert dataset_problems(f'dataset.train_file="{folder}"') == []
        assert preview(exp).rows_read == len(ROWS) and data_size(exp).rows == len(ROWS)
    exp = resolve("demo-tiny", []).experiment
    assert list(iter_source_rows(str(files), "dataset.test_file", exp.dataset)) == HELD_OUT
    assert list(iter_source_rows(str(both), "dataset.validation_file", exp.dataset)) == HELD_OUT
    problems = dataset_problems(f'dataset.train_file="{both}"',
                                'dataset.validation_strategy="custom"',
                                f'dataset.validation_file="{both}"',
                                'dataset.validation_split="dev"')
    expected = f"file {both}: the dataset folder has no split 'dev' (it has: train, validation)."
    assert problems == [("dataset.validation_split", expected)]
    ((setting, message),) = dataset_problems(f'dataset.train_file="{files}"',
                                             'dataset.prompt_columns=["question"]')
    assert setting == "dataset.prompt_columns" and "'question'" in message


def test_the_worker_reads_the_same_rows_with_datasets(offline, tmp_path):
    from tui_tune.train.data import read_rows
    from tui_tune.train.errors import UserError

    fill_datasets_cache(offline, CACHED_ID, {"train": ROWS, "validation": HELD_OUT}, tmp_path)
    both = save_dataset([], tmp_path / "saved-dict", {"train": ROWS, "validation": HELD_OUT})
    files = parquet_folder(tmp_path / "parquet", {"train": ROWS, "test": HELD_OUT})
    ds = resolve("demo-tiny", []).experiment.dataset
    for source in (CACHED_ID, str(both), str(files)):
        assert read_rows(source, "dataset.train_file", ds) == ROWS
    assert read_rows(CACHED_ID, "dataset.validation_file", ds) == HELD_OUT
    with pytest.raises(UserError) as raised:
        read_rows(str(both), "dataset.test_file", ds)
    assert raised.value.setting == "dataset.test_split"
    with pytest.raises(UserError) as raised:
        read_rows(FAKE_ID, "dataset.train_file", ds)
    assert raised.value.setting == "dataset.train_file" and "cannot be loaded" in str(raised.value)


def test_a_cached_hub_dataset_is_read_offline_at_once_when_the_hub_is_unreachable(
        offline, tmp_path, monkeypatch):
    """Without HF_HUB_OFFLINE, `datasets` would retry an unreachable hub for half a minute
    before reading its cache: the worker loads in offline mode instead."""
    import datasets

    from tui_tune.train.data import read_rows

    fill_datasets_cache(offline, CACHED_ID, {"train": ROWS}, tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    modes = []
    real = datasets.load_dataset

    def load_dataset(*args, **kwargs):
        modes.append(datasets.config.HF_HUB_OFFLINE)
        return real(*args, **kwargs)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    ds = resolve("demo-tiny", []).experiment.dataset
    assert read_rows(CACHED_ID, "dataset.train_file", ds) == ROWS
    assert modes == [True] and datasets.config.HF_HUB_OFFLINE is False  # restored after


def test_axolotl_hub_dataset_split_subset_and_revision_are_imported(tmp_path, monkeypatch):
    from tui_tune.config.experiment import flatten
    from tui_tune.config.foreign_import import import_preset

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUI_TUNE_CONFIG_DIR", str(tmp_path / "config"))
    source = tmp_path / "axolotl.yml"
    source.write_text("base_model: NousResearch/Llama-3.2-1B\nadapter: lora\ndatasets:\n"
                      "  - path: openai/gsm8k\n    name: main\n    split: test\n"
                      "    revision: v1.0\n    type: alpaca\n")
    values = flatten(resolve(str(import_preset(str(source)).path)).experiment.model_dump())
    assert (values["dataset.train_file"], values["dataset.subset"], values["dataset.train_split"],
            values["dataset.revision"]) == ("openai/gsm8k", "main", "test", "v1.0")

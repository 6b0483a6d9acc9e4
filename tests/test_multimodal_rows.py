"""multimodal_causal_lm without torch: its settings and rules, and the image cells of its data
files checked before launch (each bad image named with its file, row and path)."""

import json

import pytest
from PIL import Image

from tui_tune.config import ConfigError, ignored_settings, validate_experiment
from tui_tune.config.data_groups import Dataset
from tui_tune.runs.preflight import data_file_problems

KIND = "multimodal_causal_lm"


def problems(data):
    with pytest.raises(ConfigError) as info:
        validate_experiment(data)
    return {p.key: p.message for p in info.value.problems}


def mm(**groups):
    return {"general": {"problem_type": KIND}, **groups}


def test_freezing_a_part_is_refused_beside_lora():
    for name in ("freeze_vision_tower", "freeze_language_model"):
        found = problems(mm(architecture={name: True}))
        assert found[f"architecture.{name}"].startswith(
            "applies without an adapter (full or last_layer); 'lora' trains only")
        exp = validate_experiment(mm(architecture={name: True}, adapter={"method": "full"}))
        assert getattr(exp.architecture, name)


def test_its_settings_are_ignored_for_other_types_and_lora_projector_without_lora():
    exp = validate_experiment({"architecture": {"freeze_vision_tower": True},
                               "tokenizer": {"image_size": 224}})
    found = {p.key for p in ignored_settings(exp)}
    assert {"architecture.freeze_vision_tower", "tokenizer.image_size"} <= found
    exp = validate_experiment(mm(adapter={"method": "full", "lora_projector": True}))
    assert "adapter.lora_projector" in {p.key for p in ignored_settings(exp)}
    assert "adapter.lora_projector" not in {p.key for p in ignored_settings(
        validate_experiment(mm(adapter={"lora_projector": True})))}


def test_its_metrics_are_perplexity_and_bleu():
    assert validate_experiment(mm()).prediction.metric == "perplexity"
    validate_experiment(mm(prediction={"metric": "bleu"}))
    assert "prediction.metric" in problems(mm(prediction={"metric": "rougeL"}))


@pytest.fixture
def images(tmp_path):
    """A data folder with a good image, a 16-bit one and a file that is no image."""
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "img" / "red.png")
    Image.new("I;16", (8, 8)).save(tmp_path / "img" / "scan.png")
    (tmp_path / "img" / "broken.png").write_text("not a png")
    return tmp_path


def write(folder, rows, name="train.jsonl"):
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def check(path):
    return [(p.key, p.message) for p in data_file_problems(path, "dataset.train_file",
                                                           Dataset(), KIND)]


def row(image):
    return {"prompt": "What colour is the shape?", "answer": "red", "image": image}


def test_good_rows_pass_one_path_a_list_a_json_list_or_none(images):
    path = write(images, [row("img/red.png"), row(["img/red.png", "img/red.png"]),
                          row('["img/red.png"]'), row(None),
                          row(str(images / "img" / "red.png"))])
    assert check(path) == []


@pytest.mark.parametrize(("cell", "says"), [
    ("img/missing.png", "img/missing.png is not found (looked for {root}/img/missing.png)."),
    ("img/broken.png", ("img/broken.png cannot be read as an image (cannot identify image "
                       "file '{root}/img/broken.png').")),
    ("img/scan.png", ("img/scan.png holds I;16 pixels (16 or 32 bits per value), which the "
                     "model's 8-bit RGB would clip; save it as 8-bit RGB or L.")),
    ("https://example.com/cat.png", ("https://example.com/cat.png is a URL; runs read images "
                                    "offline: download it and name the local file.")),
    (["img/red.png", 3], "holds 3, not an image path (text, or a list of paths)."),
])
def test_a_bad_image_is_named_with_file_row_and_path(images, cell, says):
    path = write(images, [row("img/red.png"), row("img/red.png"), row(cell)])
    [(key, message)] = check(path)
    assert key == "dataset.image_column"
    assert message.startswith(f"file {path}: row 3, column 'image'")
    assert message.endswith(says.format(root=images))


def test_csv_rows_and_a_missing_image_column(images):
    path = images / "train.csv"
    path.write_text('prompt,answer,image\nWhat colour?,red,img/red.png\n'
                    'What colour?,red,"[""img/red.png"", ""img/nope.png""]"\n')
    [(key, message)] = check(str(path))
    assert (key, message.split(": ", 1)[1]) == (
        "dataset.image_column", (f"row 2, column 'image': img/nope.png is not found "
        f"(looked for {images}/img/nope.png)."))
    path = write(images, [{"prompt": "p", "answer": "a"}])
    [(key, message)] = check(path)
    assert key == "dataset.image_column" and "column 'image' is not in the file" in message

"""A multimodal run's samples in the monitor (issue 18): each sample's image beside its text
(half-block thumbnails here: the tests have no graphics terminal), `h` hides and shows them,
a gone or broken file is one "image missing: PATH" line, and files are decoded once."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.tui.conftest import FIXED_T, fixed_events, wait_for
from tui_tune.tui import image_files, image_terminal
from tui_tune.tui.app import TuneApp
from tui_tune.tui.run_data import RunSeries, decode_chunk
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.widgets import sample_images
from tui_tune.tui.widgets.panels import GenerationsPanel, sample_text
from tui_tune.tui.widgets.sample_images import SampleImages, SampleRow

SIZES = [(80, 24), (120, 40)]


def shape_png(path: Path, colour: str, squares: int = 1) -> str:
    """A 32x32 white PNG with `squares` filled squares of `colour` (what the demo asks about)."""
    image = Image.new("RGB", (32, 32), "white")
    draw = ImageDraw.Draw(image)
    for n in range(squares):
        draw.rectangle((2 + 16 * n, 8, 13 + 16 * n, 23), fill=colour)
    image.save(path)
    return str(path)


def image_events(images: dict[int, list[list[str]]]) -> list[dict]:
    """fixed_events with its samples replaced by multimodal ones: images[step] lists each
    sample's image paths at that eval step."""
    events = [e for e in fixed_events() if e["kind"] != "sample"]
    at = {e["step"]: n for n, e in enumerate(events) if e["kind"] == "eval"}
    for step in sorted(images, reverse=True):
        rows = [{"v": 1, "t": FIXED_T + step, "kind": "sample", "step": step,
                 "prompt": "What colour is the shape?" if k == 0 else "How many squares?",
                 "generation": "red" if k == 0 else "2", "reference": "red" if k == 0 else "2",
                 "images": paths} for k, paths in enumerate(images[step])]
        events[at[step] + 1:at[step] + 1] = rows
    return events


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "pictures"
    folder.mkdir()
    return {"red": shape_png(folder / "red.png", "red"),
            "two": shape_png(folder / "two-blue.png", "blue", squares=2),
            "green": shape_png(folder / "green.png", "green"),
            "yellow": shape_png(folder / "yellow.png", "yellow")}


@pytest.fixture
def image_run(make_run, pictures):
    """Evals at 40, 80 and 120; the last one's second sample has two images; yellow only
    shows at step 40."""
    events = image_events({40: [[pictures["yellow"]], [pictures["two"]]],
                           80: [[pictures["red"]], [pictures["two"]]],
                           120: [[pictures["red"]], [pictures["two"], pictures["green"]]]})
    return make_run("20260101-000000-demo-vision", events=events)


@pytest.fixture(autouse=True)
def half_blocks():
    """The renderer the app uses until `prepare()` chose one (the tests never call it)."""
    image_terminal.use(image_terminal.HALFBLOCK)
    yield
    image_terminal.use(image_terminal.HALFBLOCK)


def monitor_app(run_dir: Path) -> TuneApp:
    return TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))


async def samples_shown(pilot, app: TuneApp, rows: int = 2) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                   and not app.screen.history_loading
                   and len(app.screen.query(SampleRow)) == rows
                   # each row composes its text a message later: wait for that too
                   and all(r.query(".sample-text") for r in app.screen.query(SampleRow)))


def colours(text) -> set[str]:
    """The colours of a half-block thumbnail's cells (upper and lower pixels)."""
    styles = [span.style for span in text.spans]
    return {colour.triplet.hex for style in styles for colour in (style.color, style.bgcolor)
            if colour is not None}


async def test_each_sample_shows_its_image_as_a_half_block_thumbnail(image_run):
    app = monitor_app(image_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await samples_shown(pilot, app)
        first, second = app.screen.query(SampleRow)
        thumb = first.query_one(".sample-picture").content
        assert set(thumb.plain) <= {"▀", "\n"} and "▀" in thumb.plain
        assert "#ff0000" in colours(thumb) and "#ffffff" in colours(thumb)
        assert "What colour is the shape?" in str(first.query_one(".sample-text").render())
        assert "+1 more" in str(second.query_one(SampleImages).query_one(".more-images")
                                .render())
        assert app.screen.check_action("toggle_images", ()) is True  # `h` in the footer


async def test_h_hides_the_images_and_names_their_files_then_shows_them_again(image_run,
                                                                              pictures):
    app = monitor_app(image_run)
    async with app.run_test(size=(80, 24)) as pilot:
        await samples_shown(pilot, app)
        await pilot.press("h")
        await wait_for(pilot, lambda: not app.screen.query(SampleRow))
        text = str(app.screen.query_one("#generations-text").render())
        assert f"image  {pictures['red']}" in text
        assert f"image  {pictures['green']}" in text  # the second image is named too
        await pilot.press("h")
        await samples_shown(pilot, app)


async def test_f1_lists_the_image_key_of_a_multimodal_run(image_run):
    from tui_tune.tui.screens.help import HelpScreen
    app = monitor_app(image_run)
    async with app.run_test(size=(80, 24)) as pilot:
        await samples_shown(pilot, app)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        table = app.screen.query_one("DataTable")
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert [str(r[0]).strip() for r in rows if str(r[2]) == "monitor.images"] == ["h"]


async def test_without_colours_the_paths_show_until_asked_for(pictures, monkeypatch):
    """NO_COLOR: Textual draws no colours, so a half-block thumbnail is a grey square; the
    panel opens with the paths (`h` shows the pictures)."""
    from textual.app import App

    from tui_tune.tui.run_data import Sample

    monkeypatch.setenv("NO_COLOR", "1")
    assert image_terminal.pictures_at_start({"NO_COLOR": "1"}) is False
    image_terminal.use(image_terminal.SIXEL)  # graphics do not need colours
    assert image_terminal.pictures_at_start({"NO_COLOR": "1"}) is True
    image_terminal.use(image_terminal.HALFBLOCK)

    class PanelApp(App):
        def compose(self):
            yield GenerationsPanel()

    app = PanelApp()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(GenerationsPanel)
        panel.set_samples([Sample(40, "What colour is the shape?", "red", "red",
                                  images=[pictures["red"]])])
        await pilot.pause()
        assert f"image  {pictures['red']}" in str(panel.query_one("#generations-text").render())
        assert not panel.query(SampleRow)
        panel.show_images(True)
        await wait_for(pilot, lambda: len(panel.query(SampleRow)) == 1)


async def test_a_run_without_images_has_no_image_key(make_run):
    run = make_run("20260101-000000-demo-tiny")
    app = monitor_app(run)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                       and app.screen.series.samples)
        assert app.screen.check_action("toggle_images", ()) is False
        assert not app.screen.query(SampleRow)


async def test_a_gone_or_broken_image_is_one_line_naming_it(make_run, pictures, tmp_path):
    gone = str(tmp_path / "pictures" / "deleted.png")
    broken = tmp_path / "pictures" / "broken.png"
    broken.write_text("not a png", encoding="utf-8")
    pipe = tmp_path / "pictures" / "pipe.png"
    os.mkfifo(pipe)  # opening it to read would wait for a writer forever
    events = image_events({40: [[gone, str(pipe)], [str(broken), pictures["red"]]]})
    app = monitor_app(make_run("20260101-000000-demo-vision", events=events))
    async with app.run_test(size=(120, 40)) as pilot:
        await samples_shown(pilot, app)
        first, second = app.screen.query(SampleRow)
        assert not first.query(SampleImages)  # nothing to show but the line
        assert str(first.query_one(".sample-text").render()).startswith(
            f"image missing: {gone}\nimage missing (not a file): {pipe}\n")
        assert f"image missing (not an image): {broken}" in \
            str(second.query_one(".sample-text").render())
        assert second.query(SampleImages)  # the readable one still shows, without "+1"
        assert not second.query(".more-images")


async def test_browsing_and_redrawing_decode_each_file_once(image_run, monkeypatch):
    image_files.clear_cache()
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(path)
                        or real_open(path, *a, **k))
    app = monitor_app(image_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await samples_shown(pilot, app)
        for key in ("left_square_bracket", "left_square_bracket", "right_square_bracket",
                    "right_square_bracket", "h", "h"):
            await pilot.press(key)
            await pilot.pause()
        await samples_shown(pilot, app)
        assert len(opened) == len(set(map(str, opened))) == 4  # each picture once


async def test_the_newest_images_are_decoded_off_the_app_thread(image_run, monkeypatch):
    """A big photo takes a while to decode (a second at 4000 x 4000): the feed's thread
    decodes the newest step's, the panel's worker those of a step browsed to."""
    image_files.clear_cache()
    threads = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: threads.append(
        threading.current_thread() is threading.main_thread()) or real_open(path, *a, **k))
    app = monitor_app(image_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await samples_shown(pilot, app)
        assert threads == [False, False, False]  # the last eval's red, two-blue and green
        await pilot.press("left_square_bracket", "left_square_bracket")
        await wait_for(pilot, lambda: app.screen.query_one(GenerationsPanel).index == 0
                       and len(app.screen.query(SampleRow)) == 2)
    assert threads == [False, False, False, False]  # and step 40's yellow


def test_a_changed_file_is_read_again(pictures):
    before = image_files.read_image(pictures["red"])
    assert image_files.read_image(pictures["red"]) is before
    shape_png(Path(pictures["red"]), "blue", squares=2)
    os.utime(pictures["red"], ns=(1, 1))  # a different modification time for sure
    after = image_files.read_image(pictures["red"])
    assert after is not before and after.picture.getpixel((4, 16)) == (0, 0, 255)


def test_image_paths_are_read_from_sample_events():
    lines = [{"kind": "sample", "step": 1, "prompt": "p", "generation": "g", "reference": "r",
              "images": images} for images in (["/a.png", "/b.png"], "/c.png", [1, "/d.png"],
                                               [], None, {"path": "/e.png"})]
    series = RunSeries()
    series.add(decode_chunk("".join(json.dumps(e) + "\n" for e in lines).encode()))
    assert [s.images for s in series.samples] == [["/a.png", "/b.png"], ["/c.png"],
                                                  ["/d.png"], None, None, None]


def test_sample_text_names_the_image_files():
    from tui_tune.tui.run_data import Sample
    sample = Sample(1, "What colour?", "red", "red", images=["/x/a.png", "/x/b.png"])
    text = sample_text(sample).plain
    assert text.startswith("image  /x/a.png\nimage  /x/b.png\nprompt What colour?")
    assert "image" not in sample_text(sample, image_paths=False).plain


@pytest.mark.parametrize("renderer", [image_terminal.KITTY, image_terminal.SIXEL])
async def test_graphics_terminals_get_textual_image_widgets(image_run, renderer):
    from textual_image.widget import SixelImage, TGPImage
    image_terminal.use(renderer)
    app = monitor_app(image_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await samples_shown(pilot, app)
        picture = app.screen.query(SampleRow).first().query_one(".sample-picture")
        assert isinstance(picture, TGPImage if renderer == image_terminal.KITTY
                          else SixelImage)
        await wait_for(pilot, lambda: picture.outer_size.area > 0)
        assert (picture.outer_size.width, picture.outer_size.height) == \
            (sample_images.THUMB_COLS, sample_images.THUMB_ROWS)


@pytest.mark.parametrize("size", SIZES)
def test_monitor_with_images(snap_compare, image_run, size):
    app = monitor_app(image_run)

    async def loaded(pilot):
        await samples_shown(pilot, app)
        await wait_for(pilot, lambda: "GPU sampling off"
                       in str(app.screen.query_one("#gpu-text").render())
                       and "training" in str(app.screen.query_one("#log-text").render()))
        await pilot.pause(0.6)  # charts redraw on their 4 Hz timer

    assert snap_compare(app, terminal_size=size, run_before=loaded)


@pytest.mark.parametrize(("pixels", "cell", "cells"), [
    ((32, 32), (10, 20), (12, 6)),  # square: the whole box (cells are twice as tall)
    ((64, 32), (10, 20), (12, 3)),  # wide: full width, half the rows
    ((32, 64), (10, 20), (6, 6)),  # tall: full height, half the columns
    ((32, 32), (8, 16), (12, 6)),
])
def test_graphics_keep_the_shape_of_the_image(pixels, cell, cells):
    assert sample_images.graphic_cells(pixels, cell) == cells


def append_line(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


async def test_a_sample_arriving_after_its_eval_s_first_one_shows(make_run, pictures):
    """The worker writes an eval's samples one by one: the monitor may read the first alone."""
    events = image_events({40: [[pictures["red"]], [pictures["two"]]]})
    second = events.pop(next(n for n, e in enumerate(events) if e.get("images") == [
        pictures["two"]]))
    run = make_run("20260101-000000-demo-vision", events=events)
    app = monitor_app(run)
    async with app.run_test(size=(120, 40)) as pilot:
        await samples_shown(pilot, app, rows=1)
        append_line(run / "events.jsonl", json.dumps(second))
        await samples_shown(pilot, app, rows=2)


HALF_BLOCK = "▀".encode()


@pytest.mark.parametrize("env", [
    {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-1000/default,1,0",
     "KITTY_WINDOW_ID": "1"},  # tmux started in Kitty (its variable is inherited), over SSH
    {"TERM": "xterm-kitty"},  # says Kitty, but the pty answers no query: half blocks
])
def test_the_real_app_on_a_terminal_draws_half_block_thumbnails(image_run, env):
    """`tui-tune --watch RUN` on a pseudo-terminal without COLORTERM: the thumbnails are
    256-colour half blocks; in tmux the terminal is asked nothing."""
    from tests.tui.test_tui_terminal import COLOUR_256, TRUECOLOR, run_in_pty
    env = dict(env)
    out = run_in_pty(image_run.parent.parent, ["--no-mouse", "--watch", image_run.name],
                     env.pop("TERM"), b"prompt", **env)
    assert out.count(HALF_BLOCK) >= 12 * 6  # one thumbnail's cells at least
    assert COLOUR_256.search(out) and not TRUECOLOR.search(out)
    asked = b"\x1b[c" in out or b"\x1b_G" in out
    assert asked == ("TMUX" not in env)

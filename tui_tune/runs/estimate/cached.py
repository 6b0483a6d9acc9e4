"""The backbone's shape read once per process: the editor re-estimates on every keystroke,
and a 70B model's safetensors headers are dozens of files. Kept by backbone, revision and
its config.json's modification time, so an edited config is read again."""

from __future__ import annotations

from tui_tune.runs.estimate.shape import ModelShape, ShapeError, backbone_folder, read_shape

_shapes: dict[tuple, ModelShape] = {}
reads = 0  # how many times a config.json was actually read (the tests count them)


def cached_shape(backbone: str, revision: str | None = None) -> ModelShape:
    """read_shape, once per (backbone, revision, config.json mtime); ShapeError as it."""
    global reads
    folder = backbone_folder(backbone, revision)
    try:
        stamp = (folder / "config.json").stat().st_mtime_ns
    except OSError as error:
        raise ShapeError(f"{folder / 'config.json'} cannot be read ({error}).") from error
    key = (str(backbone), revision, stamp)
    if key not in _shapes:
        reads += 1
        _shapes[key] = read_shape(backbone, revision)
    return _shapes[key]

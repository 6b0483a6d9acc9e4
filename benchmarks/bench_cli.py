"""`tui-tune --help` wall time against bare `python -c pass` on the same interpreter."""

from __future__ import annotations

from benchmarks.common import Result, median_wall_time, python


def run() -> list[Result]:
    bare = median_wall_time(python("-c", "pass"))
    helptime = median_wall_time(python("-m", "tui_tune", "--help"))
    preset = median_wall_time(python("-m", "tui_tune", "preset", "show", "demo-tiny"))
    return [
        Result("python -c pass (reference)", bare, "s"),
        Result("tui-tune --help", helptime, "s", "< 0.5", f"{helptime / bare:.1f}x bare python"),
        Result("tui-tune preset show demo-tiny", preset, "s"),
    ]


if __name__ == "__main__":
    for result in run():
        print(result.row())

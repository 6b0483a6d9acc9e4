"""`tui-tune chat RUN` as a user meets it: a real process, its stdin piped, on a tiny trained
run. Answers are the predict path's, commands change the system prompt and the settings, and
/save writes rows that dataset.parent_id_column chains back into the conversation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import greedy_answers
from worker_env import worker_env

from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.runs.datafiles import check_rows
from tui_tune.train.formatting import Turn, build_conversations

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]


def chat(run_dir, lines: list[str], *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "tui_tune", "chat", "--runs-dir", str(run_dir.parent),
            run_dir.name, *args]
    return subprocess.run(argv, input="".join(line + "\n" for line in lines), env=worker_env(),
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def session(talking_run, tmp_path_factory):
    """One chat: a question, settings, a system prompt, a follow-up, /save, /reset, /save."""
    saved = tmp_path_factory.mktemp("chat") / "talk.jsonl"
    lines = ["/settings", "What is 12 + 30?", "/set temperature 0.7", "/set top_k 5",
             "/set nonsense 3", "/set temperature hot", "/set stop [\"9\", \"x\"]",
             "/system You are a calculator.", "Add 5 to that.", f"/save {saved}",
             f"/save {saved.with_suffix('.csv')}", "/reset", f"/save {saved}", "/bogus",
             "/quit", "never asked"]
    result = chat(talking_run, lines)
    assert result.returncode == 0, result.stderr
    return result, saved


def test_the_answer_is_the_runs_greedy_answer(session, talking_run):
    result, _ = session
    _, (answer,) = greedy_answers(talking_run, ["What is 12 + 30?"])
    said = [line for line in result.stdout.splitlines() if "model> " in line]
    assert len(said) == 2  # the two questions; nothing after /quit
    assert said[0].split("model> ", 1)[1].strip() == answer
    assert "chatting with talker" in result.stderr


def test_commands_change_the_settings_and_say_what_is_wrong(session):
    out = session[0].stdout
    assert "temperature 0, top_p 1, top_k 0, max_new_tokens 8" in out  # the run's own
    assert "temperature 0.7, top_p 1, top_k 5" in out
    assert 'stop ["9", "x"]' in out
    assert "/set: NAME is one of temperature, top_p, top_k, max_new_tokens" in out
    assert "/set temperature: 'hot' is not a number." in out
    assert "system prompt: You are a calculator." in out
    assert "must end in .jsonl" in out
    assert "the conversation is forgotten." in out
    assert "/save: nothing to save yet." in out
    assert "/bogus: not a command" in out


def test_saved_rows_train_as_a_chained_conversation(session, demo_assets):
    result, saved = session
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    assert f"saved 2 rows to {saved}" in result.stdout
    assert [r["prompt"] for r in rows] == ["What is 12 + 30?", "Add 5 to that."]
    assert rows[0]["parent_id"] is None and rows[1]["parent_id"] == rows[0]["id"]
    assert rows[0]["system"] == "You are a calculator."  # the conversation's start holds it
    said = [line.split("model> ", 1)[1].strip() for line in result.stdout.splitlines()
            if "model> " in line]
    assert [r["answer"] for r in rows] == said
    exp = resolve(str(builtin_dir() / "demo-tiny.toml"), [
        f'general.backbone="{demo_assets / "model"}"', f'dataset.train_file="{saved}"',
        'dataset.parent_id_column="parent_id"', 'dataset.system_column="system"']).experiment
    check_rows(rows, exp.dataset, "causal_lm")
    last = build_conversations(rows[1:], exp.dataset, lookup=rows)[0]
    assert last.system == "You are a calculator."
    assert last.turns == [Turn("What is 12 + 30?", said[0]), Turn("Add 5 to that.", said[1])]


def test_a_run_without_final_is_refused_before_loading(tmp_path, make_run_dir):
    run_dir = make_run_dir(tmp_path / "runs" / "untrained")
    result = chat(run_dir, ["hello"])
    assert result.returncode == 2
    assert "no final/" in result.stderr and len(result.stderr.strip().splitlines()) == 1

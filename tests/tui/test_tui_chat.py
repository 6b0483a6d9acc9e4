"""The chat screen with real models: the run's final/ and its base model side by side, each
served by its own `tui-tune serve-model` child, answer one prompt as direct greedy generation
does; the conversation saves as chained rows; leaving stops both servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import greedy_answers
from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.chat import ChatScreen

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]

QUESTION = "17+25="


def base_answer(run_dir: Path, question: str) -> str:
    """The backbone's greedy answer in the run's prompt format (what --base serves)."""
    import torch

    from tui_tune.train.generation import generate_answers
    from tui_tune.train.inference import base_model
    from tui_tune.train.model import load_tokenizer
    from tui_tune.train.setup import read_experiment
    from tui_tune.train.tasks.causal_lm import prompt_examples

    exp = read_experiment(run_dir)
    tokenizer = load_tokenizer(exp)
    model = base_model(exp, tokenizer, None, torch.device("cpu"))
    examples = prompt_examples([{"prompt": question}], exp, tokenizer)
    return generate_answers(model, tokenizer, examples, exp.prediction, torch.device("cpu"),
                            1)[0]


async def test_a_run_and_its_base_model_answer_side_by_side(talking_run):
    trained = greedy_answers(talking_run, [QUESTION])[1][0]
    base = base_answer(talking_run, QUESTION)
    assert trained != base  # else the test could not tell the two sides apart
    app = TuneApp(start=lambda: ChatScreen([talking_run], with_base=True))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert [side.base for side in screen.sides] == [False, True]
        await wait_for(pilot, lambda: all(s.state == "ready" for s in screen.sides),
                       timeout=240)
        assert screen.query_one("#chat-temperature").value == "0.0"  # the run's greedy decoding
        await pilot.click("#chat-prompt")
        await pilot.press(*QUESTION, "enter")
        await wait_for(pilot, lambda: all(s.state == "ready" and s.turns and s.turns[-1].answer
                                          or s.error for s in screen.sides), timeout=120)
        assert [s.error for s in screen.sides] == ["", ""]
        assert [s.turns[-1].answer for s in screen.sides] == [trained, base]
        shown = str(screen.query_one("#chat-transcript-0").render())
        assert QUESTION in shown and trained.strip()[:5] in shown

        await pilot.press("ctrl+s")
        saved = sorted((talking_run / "chats").glob("chat-*.jsonl"))
        assert len(saved) == 1  # the base side belongs to no training
        rows = [json.loads(line) for line in saved[0].read_text().splitlines()]
        assert [(r["prompt"], r["answer"], r["parent_id"]) for r in rows] == [
            (QUESTION, trained, None)]

        servers = [s.server for s in screen.sides]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not any(server.running for server in servers))

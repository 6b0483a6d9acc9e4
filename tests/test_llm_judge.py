"""prediction.metric = "llm_judge": end to end, a training run's validation answers judged by
`tui-tune serve-model` serving the demo model (a real server, its replies parsed and counted
into the eval events); the client's retries, backoff, cap and concurrency against a small
scripted OpenAI-style server; the settings' rules and launch checks."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import threading

import pytest
from aiohttp import web
from conftest import read_events
from worker_env import worker_env

from tui_tune.config import ConfigError
from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.config.training_groups import Prediction
from tui_tune.runs.preflight import preflight
from tui_tune.train import judge as judge_module
from tui_tune.train.judge import fill, judge, parse, template_text
from tui_tune.tui.run_data import RunSeries, decode_chunk
from tui_tune.tui.widgets.panels import sample_text

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]

KEY_VAR, KEY = "TUI_TUNE_TEST_JUDGE_KEY", "judge-key-7"


def test_replies_are_parsed_as_h2o_reads_them():
    assert parse("EXPLANATION: close enough.\nSCORE: 0.8") == (0.8, "close enough.")
    assert parse("The answer is wrong.\nScore: **3**") == (3.0, "The answer is wrong.")
    assert parse("Good. Rating: [[7]]") == (7.0, "Good. Rating:")
    assert parse("1") == (1.0, "1")  # H2O: the first word, when no SCORE: line
    assert parse("0.5 because it is half right") == (0.5, "0.5 because it is half right")
    assert parse("I cannot tell.") == (None, "I cannot tell.")
    assert parse("") == (None, "")
    assert parse("SCORE: nan")[0] is None


def test_templates_are_filled_as_plain_text(tmp_path):
    text = fill(template_text("general"), "What is {x}?", "4", "5")
    assert "What is {x}?" in text and "[Start of Reference Answer]\n4\n" in text
    assert "{_" not in fill(template_text("mt-bench"), "a", "b", "c")
    own = tmp_path / "own.txt"
    own.write_text("Q {_PROMPT} R {_TARGET_TEXT} A {_PREDICTED_TEXT}")
    assert fill(template_text(str(own)), "1", "2", "3") == "Q 1 R 2 A 3"


class ScriptedJudge:
    """An OpenAI-style chat endpoint in a thread, answering from a script per prompt."""

    def __init__(self, script):
        self.script, self.seen, self.keys = script, [], []
        self.calls, self.busy, self.most_busy = {}, 0, 0

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.keys.append(request.headers.get("Authorization"))
        prompt = body["messages"][-1]["content"]
        self.seen.append(body)
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        await asyncio.sleep(0.05)
        self.busy -= 1
        n = self.calls[prompt] = self.calls.get(prompt, 0) + 1
        status, reply = self.script(prompt, n)
        if status != 200:
            return web.Response(status=status, text="busy")
        return web.json_response({"choices": [{"message": {"role": "assistant",
                                                           "content": reply}}]})

    def __enter__(self):
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        self.loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        self.runner = runner
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def settings(url: str, **changes) -> Prediction:
    return Prediction(metric="llm_judge", judge_base_url=url, judge_model="judge-1",
                      judge_api_key_env=KEY_VAR, judge_concurrency=2, judge_retries=2,
                      **changes)


def test_the_client_retries_counts_and_caps(monkeypatch):
    monkeypatch.setattr(judge_module, "BACKOFF_S", 0.01)
    monkeypatch.setenv(KEY_VAR, KEY)

    def script(prompt: str, n: int):
        if "busy-then-ok" in prompt:
            return (503, "") if n == 1 else (200, "EXPLANATION: fine\nSCORE: 0.5")
        if "refused" in prompt:
            return 400, ""
        if "always-busy" in prompt:
            return 429, ""
        if "babble" in prompt:
            return 200, "no idea what to say"
        return 200, "SCORE: 1"

    items = [(f"q{n}", answer, "ref") for n, answer in enumerate(
        ["busy-then-ok", "refused", "always-busy", "babble", "good", "good", "past the cap"])]
    with ScriptedJudge(script) as server:
        result = judge(items, settings(server.url, judge_max_requests=6))
    assert [v.score for v in result.verdicts] == [0.5, None, None, None, 1.0, 1.0]
    assert result.score == pytest.approx((0.5 + 1 + 1) / 3)
    assert (result.unparsed, result.failed) == (1, 2)
    assert "HTTP 400" in result.verdicts[1].failed and "HTTP 429" in result.verdicts[2].failed
    assert len(server.seen) == 2 + 1 + 3 + 1 + 2  # retried: 503 once, 429 to the end; 400 never
    assert all("past the cap" not in b["messages"][-1]["content"] for b in server.seen)
    assert server.most_busy == 2
    assert set(server.keys) == {f"Bearer {KEY}"}
    assert {b["model"] for b in server.seen} == {"judge-1"}
    assert all(b["temperature"] == 0 for b in server.seen)
    fields = result.event_fields()
    assert fields["judge_examples"][0] == {"prompt": "q0", "answer": "busy-then-ok",
                                           "reference": "ref", "score": 0.5, "reason": "fine"}
    assert len(fields["judge_examples"]) == judge_module.EXAMPLES_KEPT


def experiment(demo_assets, *sets: str):
    return resolve(str(builtin_dir() / "demo-tiny.toml"), [
        f'general.backbone="{demo_assets / "model"}"',
        f'dataset.train_file="{demo_assets / "data" / "train.jsonl"}"', *sets]).experiment


def test_the_settings_are_checked_before_launch(demo_assets, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="prediction.judge_base_url"):
        experiment(demo_assets, 'prediction.metric="llm_judge"')
    with pytest.raises(ConfigError, match="prediction.metric"):
        experiment(demo_assets, 'prediction.metric="llm_judge"',
                   'prediction.judge_base_url="http://x/v1"', 'general.problem_type='
                   '"classification"')
    monkeypatch.delenv(KEY_VAR, raising=False)
    own = tmp_path / "judge.txt"
    own.write_text("only {_PROMPT} here")
    exp = experiment(demo_assets, 'prediction.metric="llm_judge"',
                     'prediction.judge_base_url="http://x/v1"',
                     f'prediction.judge_api_key_env="{KEY_VAR}"',
                     f'prediction.judge_template="{own}"')
    problems = {p.key: p.message for p in preflight(exp, 0)}
    assert KEY_VAR in problems["prediction.judge_api_key_env"]
    assert "{_TARGET_TEXT}, {_PREDICTED_TEXT}" in problems["prediction.judge_template"]
    monkeypatch.setenv(KEY_VAR, KEY)
    exp = experiment(demo_assets, 'prediction.metric="llm_judge"',
                     'prediction.judge_base_url="http://x/v1"',
                     f'prediction.judge_api_key_env="{KEY_VAR}"',
                     f'prediction.judge_template="{tmp_path / "missing.txt"}"')
    problems = {p.key: p.message for p in preflight(exp, 0)}
    assert "prediction.judge_api_key_env" not in problems
    assert "missing.txt" in problems["prediction.judge_template"]


@pytest.fixture(scope="module")
def judge_server(talking_run):
    """serve-model on the demo run, with an API key: the judge."""
    env = {**worker_env(), KEY_VAR: KEY}
    argv = [sys.executable, "-m", "tui_tune", "serve-model", "--runs-dir",
            str(talking_run.parent), talking_run.name, "--port", "0", "--api-key-env", KEY_VAR]
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()
    assert url.endswith("/v1"), process.stderr.read()
    yield url
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def test_a_run_is_judged_by_a_served_model(judge_server, talking_run, tmp_path, make_run_dir):
    run_dir = make_run_dir(tmp_path / "judged", [
        "training.max_steps=10", "training.eval_every_steps=10", "prediction.num_samples=2",
        'training.save_checkpoint="disable"', 'prediction.metric="llm_judge"',
        f'prediction.judge_base_url="{judge_server}"',
        f'prediction.judge_model="{talking_run.name}"',
        f'prediction.judge_api_key_env="{KEY_VAR}"', "prediction.judge_max_requests=4"])
    config = (run_dir / "config.toml").read_text()
    assert KEY not in config and KEY_VAR in config  # the key is never stored
    result = subprocess.run([sys.executable, "-m", "tui_tune.train", str(run_dir)],
                            env={**worker_env(), KEY_VAR: KEY}, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    evals = read_events(run_dir, "eval")
    assert evals
    samples = {s["prompt"]: s["generation"] for s in read_events(run_dir, "sample")}
    for event in evals:
        examples = event["judge_examples"]
        assert event["metric"] == "llm_judge" and event["judge_failed"] == 0
        assert len(examples) == 4  # every judged answer (the cap) is kept
        scores = [e["score"] for e in examples if e["score"] is not None]
        assert event["judge_unparsed"] == 4 - len(scores)
        for example in examples:
            assert example["reason"]  # the judge's reply came back
            assert parse(example["reason"])[0] == example["score"]
        mean = sum(scores) / len(scores) if scores else math.nan
        for value in (event["llm_judge"], event["metric_value"]):
            assert (math.isnan(value) and math.isnan(mean)) or value == pytest.approx(mean)
    last = evals[-1]["judge_examples"]
    assert any(e["answer"] == answer for e in last for answer in samples.values())
    # each shown sample carries its own verdict, which the monitor's samples panel prints
    for sample in (s for s in read_events(run_dir, "sample") if s["step"] == evals[-1]["step"]):
        verdict = next(e for e in last if e["answer"] == sample["generation"])
        assert (sample["judge_score"], sample["judge_reason"]) == (verdict["score"],
                                                                   verdict["reason"])
        series = RunSeries()
        series.add(decode_chunk((json.dumps(sample) + "\n").encode()))
        shown = sample_text(series.samples[0]).plain
        assert "judge  " in shown and verdict["reason"].strip() in shown
    line = next(line for line in (run_dir / "events.jsonl").read_text().splitlines()
                if '"eval"' in line)
    assert "judge_examples" in json.loads(line)

"""`tui-tune serve-model`: the real server as a subprocess (one per module) on a tiny trained
run, spoken to over HTTP with urllib and aiohttp's client, as any OpenAI client would: both
routes, streaming and not, the API key, unknown models and routes, and answers equal to the
predict path's greedy generation."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import aiohttp
import pytest
from conftest import greedy_answers
from worker_env import worker_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]

KEY_VAR, KEY = "TUI_TUNE_TEST_SERVE_KEY", "test-key-123"
QUESTIONS = ["What is 12 + 30?", "What is 7 + 5?", "What is 40 + 41?"]


def serve_argv(run_dir, *args: str) -> list[str]:
    return [sys.executable, "-m", "tui_tune", "serve-model", "--runs-dir", str(run_dir.parent),
            run_dir.name, *args]


@pytest.fixture(scope="module")
def server(talking_run):
    """(base URL, process): started with --port 0 and an API key; the URL is its first line."""
    env = {**worker_env(), KEY_VAR: KEY}
    process = subprocess.Popen(serve_argv(talking_run, "--port", "0", "--api-key-env", KEY_VAR),
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1"), process.stderr.read()
    yield url, process
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def expected(talking_run) -> dict:
    """Each question's greedy answer the way `tui-tune predict` makes it, and the prompts."""
    prompts, answers = greedy_answers(talking_run, QUESTIONS)
    return {"prompts": prompts, **dict(zip(QUESTIONS, answers))}


def call(url: str, path: str, body: dict | None = None,
         key: str | None = KEY) -> tuple[int, dict]:
    request = urllib.request.Request(url + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


async def stream_events(url: str, path: str, body: dict) -> list[str]:
    """The `data:` payloads of a streamed answer, in order."""
    headers = {"Authorization": f"Bearer {KEY}"}
    events = []
    async with aiohttp.ClientSession() as session, \
            session.post(url + path, json={**body, "stream": True}, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for line in response.content:
            text = line.decode().strip()
            if text:
                assert text.startswith("data: ")
                events.append(text[len("data: "):])
    return events


def test_models_lists_the_run(server, talking_run):
    url, _ = server
    status, body = call(url, "/models")
    assert status == 200
    assert [m["id"] for m in body["data"]] == [talking_run.name]


def test_the_api_key_is_required(server):
    url, _ = server
    for key in (None, "wrong"):
        for path, body in (("/models", None), ("/chat/completions", {"messages": ask("x")})):
            status, answer = call(url, path, body, key=key)
            assert status == 401
            assert answer["error"]["code"] == "invalid_api_key"


def test_chat_answers_equal_direct_generation(server, expected, talking_run):
    url, _ = server
    for question in QUESTIONS:
        status, body = call(url, "/chat/completions",
                            {"model": talking_run.name, "messages": ask(question)})
        assert status == 200, body
        assert body["object"] == "chat.completion"
        choice = body["choices"][0]
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"].strip() == expected[question]
        assert choice["finish_reason"] in ("stop", "length")
        assert body["usage"]["total_tokens"] == \
            body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_completions_take_the_prompt_as_written(server, expected):
    url, _ = server
    for question, prompt in zip(QUESTIONS, expected["prompts"]):
        status, body = call(url, "/completions", {"prompt": prompt, "temperature": 0})
        assert status == 200, body
        assert body["object"] == "text_completion"
        assert body["choices"][0]["text"].strip() == expected[question]


def test_streamed_answers_are_the_same_answers(server, expected):
    url, _ = server
    question = QUESTIONS[0]
    chat = asyncio.run(stream_events(url, "/chat/completions", {"messages": ask(question)}))
    assert chat[-1] == "[DONE]"
    chunks = [json.loads(e) for e in chat[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip() == expected[question]
    assert len(chunks) >= 3  # role, at least one piece, finish
    plain = asyncio.run(stream_events(url, "/completions", {"prompt": expected["prompts"][0]}))
    assert plain[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["text"] for e in plain[:-1])
    assert text.strip() == expected[question]


def test_requests_at_once_each_get_their_answer(server, expected):
    """Served one at a time on the one model; each waits its turn and gets its own answer."""
    url, _ = server

    async def all_at_once():
        async with aiohttp.ClientSession() as session:
            async def one(question):
                async with session.post(url + "/chat/completions",
                                        json={"messages": ask(question)},
                                        headers={"Authorization": f"Bearer {KEY}"}) as response:
                    return (await response.json())["choices"][0]["message"]["content"]
            return await asyncio.gather(*(one(q) for q in QUESTIONS * 2))

    answers = asyncio.run(all_at_once())
    assert [a.strip() for a in answers] == [expected[q] for q in QUESTIONS * 2]


def test_settings_and_history_are_taken(server, expected):
    url, _ = server
    question = QUESTIONS[0]
    status, body = call(url, "/chat/completions", {"messages": ask(question), "max_tokens": 1})
    assert status == 200
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 1
    assert expected[question].startswith(body["choices"][0]["message"]["content"].strip())
    history = [{"role": "system", "content": "You are a calculator."}, *ask(question),
               {"role": "assistant", "content": "42"}, *ask("Add 5 to that.")]
    status, body = call(url, "/chat/completions", {"messages": history, "temperature": 0.8,
                                                   "top_p": 0.9, "top_k": 5, "stop": ["\n"],
                                                   "repetition_penalty": 1.1})
    assert status == 200 and body["choices"][0]["finish_reason"] in ("stop", "length")


def test_unknown_models_routes_and_bad_requests_are_refused(server):
    url, _ = server
    status, body = call(url, "/chat/completions", {"model": "gpt-4", "messages": ask("x")})
    assert status == 404 and body["error"]["code"] == "model_not_found"
    assert "gpt-4" in body["error"]["message"]
    status, body = call(url, "/embeddings", {"input": "x"})
    assert status == 404 and "/v1/chat/completions" in body["error"]["message"]
    for bad, named in (({"messages": [{"role": "assistant", "content": "x"}]}, "user"),
                       ({"messages": ask("x"), "temperature": -1}, "temperature"),
                       ({"messages": ask("x"), "n": 2}, "n must be 1"),
                       ({"messages": "hello"}, "messages")):
        status, body = call(url, "/chat/completions", bad)
        assert status == 400, bad
        assert named in body["error"]["message"]
    status, body = call(url, "/completions", {"prompt": 5})
    assert status == 400 and "prompt" in body["error"]["message"]


def test_a_client_that_leaves_mid_stream_frees_the_model(server, expected):
    url, _ = server

    async def leave_early():
        async with aiohttp.ClientSession() as session, session.post(
                url + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                json={"messages": ask(QUESTIONS[1]), "stream": True,
                      "max_tokens": 200}) as response:
            await response.content.readline()

    asyncio.run(leave_early())
    status, body = call(url, "/chat/completions", {"messages": ask(QUESTIONS[2])})
    assert status == 200
    assert body["choices"][0]["message"]["content"].strip() == expected[QUESTIONS[2]]


def run_cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env or worker_env(), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


def test_what_needs_no_model_is_refused_first(talking_run, server):
    env = {k: v for k, v in worker_env().items() if k != KEY_VAR}
    result = run_cli(*serve_argv(talking_run, "--port", "0", "--api-key-env", KEY_VAR), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == f"tui-tune: --api-key-env: the environment variable " \
        f"{KEY_VAR} is not set or empty."
    result = run_cli(*serve_argv(talking_run, "--port", "0", "--checkpoint", "step-999"))
    assert result.returncode == 2 and "--checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    taken = int(server[0].rsplit(":", 1)[1].split("/")[0])
    result = run_cli(*serve_argv(talking_run, "--port", str(taken)))
    assert result.returncode == 2 and f"--port {taken}" in result.stderr
    assert "torch" not in result.stderr


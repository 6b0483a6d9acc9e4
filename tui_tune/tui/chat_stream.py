"""Streaming chat completions from an OpenAI-compatible endpoint (`/v1/chat/completions`
with `stream: true`): the app's side of the chat screen, plain HTTP, no torch.

aiohttp (already installed for `serve-model`) reads the server-sent events; each `data:` line
carries a chunk whose `choices[0].delta.content` is the next piece of text, `data: [DONE]`
ends the answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field

DONE = "[DONE]"
READ_TIMEOUT_S = 600.0  # a long answer from a big model on a busy GPU


@dataclass
class GenerationSettings:
    """What the chat screen lets a user change between two prompts."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    max_tokens: int = 256
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)

    @classmethod
    def of_run(cls, prediction) -> GenerationSettings:
        """The run's own decoding (prediction.*; temperature 0 when it does not sample), the
        same start serve-model and `tui-tune chat` take."""
        decoding = prediction.decoding()
        return cls(max_tokens=decoding.pop("max_new_tokens"), **decoding)

    def request(self) -> dict:
        """The fields of an OpenAI request (top_k and repetition_penalty are extensions
        that vLLM, llama.cpp and our serve-model read alike)."""
        body = asdict(self)
        if not body["stop"]:
            del body["stop"]
        return body


class ChatStreamError(RuntimeError):
    """The endpoint refused the request or broke off; the message says what it answered."""


def parse_event(line: str) -> str | None:
    """The text a server-sent `data:` line adds (None for [DONE] and non-data lines)."""
    if not line.startswith("data:"):
        return None
    payload = line[len("data:"):].strip()
    if not payload or payload == DONE:
        return None
    chunk = json.loads(payload)
    if "error" in chunk:
        raise ChatStreamError(str(chunk["error"].get("message", chunk["error"])))
    choices = chunk.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or ""


async def served_model(base_url: str, api_key: str | None = None) -> str:
    """The id of the (first) model the endpoint serves (GET /v1/models): requests name it."""
    import aiohttp

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"{base_url}/v1/models", headers=headers) as response:
            if response.status != 200:
                raise ChatStreamError(f"HTTP {response.status}: "
                                      f"{(await response.text())[:300]}")
            models = (await response.json()).get("data") or []
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ChatStreamError(f"{type(error).__name__}: {error}") from error
    if not models:
        raise ChatStreamError(f"{base_url}/v1/models lists no model")
    return str(models[0]["id"])


async def stream_chat(base_url: str, messages: list[dict], settings: GenerationSettings,
                      model: str, api_key: str | None = None) -> AsyncIterator[str]:
    """Yield the answer to `messages` piece by piece as the server generates it."""
    import aiohttp

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"model": model, "messages": messages, "stream": True, **settings.request()}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=READ_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                f"{base_url}/v1/chat/completions", json=body, headers=headers) as response:
            if response.status != 200:
                raise ChatStreamError(f"HTTP {response.status}: "
                                      f"{(await response.text())[:300]}")
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").strip()
                if line == f"data: {DONE}":
                    return
                piece = parse_event(line)
                if piece:
                    yield piece
    except (aiohttp.ClientError, TimeoutError) as error:  # the server went away
        raise ChatStreamError(f"{type(error).__name__}: {error}") from error

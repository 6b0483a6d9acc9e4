"""`tui-tune serve-model`: a run's model behind an OpenAI-compatible HTTP API (aiohttp), so
any OpenAI client, the app's chat screen and the LLM judge (train/judge.py) can talk to it.

Routes: GET /v1/models, POST /v1/chat/completions (messages, formatted as the run was
trained) and POST /v1/completions (a raw prompt, tokenized as written), each streaming
(server-sent events `data: {...}`, then `data: [DONE]`) or not. Accepted request fields:
model (the served name, or left out), temperature, top_p, top_k, max_tokens (or
max_completion_tokens), repetition_penalty, stop, stream, n = 1; others are ignored. Errors
are OpenAI's `{"error": {"message", "type", "code"}}`. One request is served at a time (a lock:
one model, one generation), the rest wait their turn.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

from tui_tune.train.inference import BadRequest, LoadedRun, Reply, Settings

DONE = b"data: [DONE]\n\n"
# request field -> Settings field
SETTING_FIELDS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
                  "max_tokens": "max_new_tokens", "max_completion_tokens": "max_new_tokens",
                  "repetition_penalty": "repetition_penalty", "stop": "stop"}
MODEL = web.AppKey("model", LoadedRun)
LOCK = web.AppKey("lock", asyncio.Lock)
_END = object()


def error_response(status: int, message: str, kind: str = "invalid_request_error",
                   code: str | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": code,
                                        "param": None}}, status=status)


def make_app(loaded: LoadedRun, api_key: str | None = None) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler):
        if api_key is not None and request.headers.get("Authorization") != f"Bearer {api_key}":
            return error_response(401, "a missing or wrong API key (Authorization: Bearer "
                                  "<key>).", code="invalid_api_key")
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return error_response(404, f"no route {request.method} {request.path}; this "
                                  "server has /v1/models, /v1/chat/completions and "
                                  "/v1/completions.", code="unknown_route")
        except web.HTTPMethodNotAllowed:
            return error_response(405, f"{request.method} is not allowed on {request.path}.")

    app = web.Application(middlewares=[guard])
    app[MODEL] = loaded
    app[LOCK] = asyncio.Lock()
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    return app


async def list_models(request: web.Request) -> web.Response:
    loaded = request.app[MODEL]
    return web.json_response({"object": "list", "data": [model_card(loaded)]})


def model_card(loaded: LoadedRun) -> dict[str, Any]:
    created = int((loaded.folder or loaded.run_dir).stat().st_mtime)  # --base: no folder
    return {"id": loaded.name, "object": "model", "created": created, "owned_by": "tui-tune"}


async def read_request(request: web.Request) -> tuple[dict, Settings]:
    """The JSON body and the settings it asks for, on top of the run's own."""
    loaded = request.app[MODEL]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    model = body.get("model")
    if model not in (None, "", loaded.name):
        raise LookupError(f"the model '{model}' is not served here; this server serves "
                          f"'{loaded.name}' (GET /v1/models).")
    if body.get("n", 1) != 1:
        raise BadRequest("n must be 1: one answer per request")
    changes = {field: body[key] for key, field in SETTING_FIELDS.items()
               if body.get(key) is not None}
    return body, loaded.settings.updated(**changes)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await answer(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await answer(request, chat=False)


async def answer(request: web.Request, chat: bool) -> web.StreamResponse:
    loaded = request.app[MODEL]
    try:
        body, settings = await read_request(request)
        if chat:
            prompt_ids = loaded.chat_prompt_ids(body.get("messages"))
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1:
                prompt = prompt[0]
            prompt_ids = loaded.text_prompt_ids(prompt)
    except BadRequest as error:
        return error_response(400, str(error))
    except LookupError as error:
        return error_response(404, str(error), code="model_not_found")
    head = {"id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex,
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": loaded.name}
    async with request.app[LOCK]:
        if body.get("stream"):
            return await stream_answer(request, loaded, prompt_ids, settings, head, chat)
        reply = await asyncio.to_thread(loaded.complete, prompt_ids, settings)
    choice: dict[str, Any] = {"index": 0, "finish_reason": reply.finish_reason}
    if chat:
        choice["message"] = {"role": "assistant", "content": reply.text}
    else:
        choice.update(text=reply.text, logprobs=None)
    return web.json_response({**head, "choices": [choice], "usage": usage(reply)})


def usage(reply: Reply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


async def stream_answer(request: web.Request, loaded: LoadedRun, prompt_ids: list[int],
                        settings: Settings, head: dict, chat: bool) -> web.StreamResponse:
    """Server-sent events: a chunk per piece of text, one with the finish reason, [DONE].
    A client that goes away ends the generation."""
    head = {**head, "object": "chat.completion.chunk" if chat else "text_completion"}
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)

    def chunk(text: str | None, finish: str | None, role: bool = False) -> bytes:
        if chat:
            delta = {"role": "assistant", "content": ""} if role else \
                {} if text is None else {"content": text}
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}
        return f"data: {json.dumps({**head, 'choices': [choice]})}\n\n".encode()

    reply = Reply()
    pieces = loaded.stream(prompt_ids, settings, reply)
    try:
        if chat:
            await response.write(chunk(None, None, role=True))
        while (piece := await asyncio.to_thread(next, pieces, _END)) is not _END:
            await response.write(chunk(piece, None))
        await response.write(chunk(None, reply.finish_reason))
        await response.write(DONE)
    except ConnectionError:  # the client left: generation ends with the stream below
        pass
    finally:
        await asyncio.to_thread(pieces.close)
    return response


def serve(loaded: LoadedRun, sock, api_key: str | None) -> None:
    """Until SIGINT or SIGTERM."""
    web.run_app(make_app(loaded, api_key), sock=sock, print=None, access_log=None,
                handle_signals=True)

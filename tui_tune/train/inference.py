"""Talking to a trained run: its model loaded once, prompts formatted exactly as the run was
trained, answers generated token by token. Shared by `tui-tune serve-model` (serve_model.py)
and `tui-tune chat` (cli/chat.py).

The model is built as `tui-tune predict` builds it (predict.trained_model: backbone, adapter
family, final/ or checkpoints/step-N); a conversation becomes the run's own prompt through
formatting.py (text markers or chat template, system prompt, earlier turns, the generation
prompt cut to tokenizer.max_length as in training); generation takes generation.py's settings
with the request's temperature, top_p, top_k, max_new_tokens, repetition_penalty and stop
strings on top. Only causal LMs talk: other problem types are refused by name.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from tui_tune.train.errors import UserError

ROLES = ("system", "user", "assistant")


class BadRequest(ValueError):
    """A conversation, prompt or setting the model cannot take as given; the message names
    the field."""


@dataclass
class Settings:
    """Generation settings a request or `/set` may change; the run's prediction.* by default.
    temperature 0 is greedy decoding (as in the run's evaluation)."""
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)

    @classmethod
    def of_run(cls, prediction) -> Settings:
        return cls(**prediction.decoding())

    def updated(self, **changes) -> Settings:
        """A copy with `changes` (None left out), checked: a bad value is a BadRequest naming
        the setting."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        new = Settings(**values)
        new.check()
        return new

    def check(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        limits = {"temperature": (0.0, 10.0), "top_p": (1e-9, 1.0), "top_k": (0, 1_000_000),
                  "max_new_tokens": (1, 1_000_000), "repetition_penalty": (1e-9, 10.0)}
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadRequest(f"{name} must be a number, not {value!r}")
            if not low <= value <= high:
                raise BadRequest(f"{name} must be between {low:g} and {high:g}, not {value!r}")
        if not all(isinstance(s, str) and s for s in self.stop):
            raise BadRequest("stop must be a text or a list of non-empty texts")
        self.top_k, self.max_new_tokens = int(self.top_k), int(self.max_new_tokens)


@dataclass
class Reply:
    """What one generation gave: the text (without a stop string), why it ended ("stop": the
    end token or a stop string; "length": max_new_tokens) and the token counts."""
    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0


def messages_conversation(messages: list[dict]):
    """OpenAI-style messages -> formatting.Conversation with an empty last answer: system
    messages first (joined), then user and assistant turns in turn, ending with a user turn.
    BadRequest says what is wrong."""
    from tui_tune.train.formatting import Conversation, Turn

    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    system, turns, user = [], [], None
    for n, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{n}] must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise BadRequest(f"messages[{n}].role must be one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise BadRequest(f"messages[{n}].content must be a text")
        if role == "system":
            if turns or user is not None:
                raise BadRequest(f"messages[{n}]: a system message comes before the turns")
            system.append(content)
        elif role == "user":
            if user is not None:
                raise BadRequest(f"messages[{n}]: two user messages in a row; user and "
                                 "assistant messages take turns")
            user = content
        else:
            if user is None:
                raise BadRequest(f"messages[{n}]: an assistant message answers a user message")
            turns.append(Turn(user, content))
            user = None
    if user is None:
        raise BadRequest("the last message must be a user message")
    return Conversation("\n".join(system), [*turns, Turn(user, "")])


def counting_streamer(tokenizer):
    """transformers' TextIteratorStreamer (the answer only, as text) that also counts the
    tokens it is given."""
    from transformers import TextIteratorStreamer

    class CountingStreamer(TextIteratorStreamer):
        tokens = 0
        prompt_seen = False

        def put(self, value):
            if self.prompt_seen:
                self.tokens += int(value.numel())
            self.prompt_seen = True
            super().put(value)

    return CountingStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


class _Cancelled:
    """A stopping criterion that ends generation once `event` is set (a client went away)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        done = self.event.is_set()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def held_back(text: str, stops: list[str]) -> tuple[str, bool]:
    """(the part of `text` that can be shown, whether a stop string was met): text up to a
    stop string, less any end that could still become one."""
    cut = [text.index(s) for s in stops if s in text]
    if cut:
        return text[:min(cut)], True
    keep = len(text)
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                keep = min(keep, len(text) - size)
                break
    return text[:keep], False


class LoadedRun:
    """A run's causal LM, loaded once, with its tokenizer and training format."""

    def __init__(self, run_dir: Path, checkpoint: str | None = None, base: bool = False):
        from accelerate import Accelerator

        from tui_tune.runs.files import read_run_json
        from tui_tune.runs.predictions import PredictError, weights_folder
        from tui_tune.train.model import load_tokenizer
        from tui_tune.train.predict import trained_model
        from tui_tune.train.setup import read_experiment
        from tui_tune.train.tasks import task_for

        self.run_dir = Path(run_dir)
        self.exp = exp = read_experiment(self.run_dir)
        self.task = task = task_for(exp)
        if task.auto_model != "AutoModelForCausalLM":
            raise UserError(f"the run is a {exp.general.problem_type} run, whose model does "
                            "not write text; only causal language models can chat or be "
                            "served.", "general.problem_type")
        try:  # `base`: the backbone the run started from, in the run's format
            self.folder = None if base else weights_folder(self.run_dir, checkpoint)
        except PredictError as error:
            raise UserError(str(error)) from None
        self.name = self.run_dir.name + ("/base" if base else
                                         f"/{self.folder.name}" if checkpoint else "")
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                                       mixed_precision=exp.environment.mixed_precision)
        self.tokenizer = load_tokenizer(exp)
        seed = int(read_run_json(self.run_dir).get("seed", max(exp.environment.seed, 0)))
        data = task.predict_setup(exp, self.tokenizer, seed)
        self.model = base_model(exp, self.tokenizer, data, self.accelerator.device) if base \
            else trained_model(exp, task, self.tokenizer, data, self.folder,
                               self.accelerator.device)
        self.settings = Settings.of_run(exp.prediction)

    def chat_prompt_ids(self, messages: list[dict]) -> list[int]:
        """The generation prompt of a conversation, exactly as training wrote it."""
        from tui_tune.train.formatting import tokenize_conversations

        conv = messages_conversation(messages)
        tok = self.exp.tokenizer
        try:
            example = tokenize_conversations([conv], self.exp.dataset, self.tokenizer,
                                             tok.max_length, tok.truncation_side)[0]
        except ValueError as error:  # a chat template that does not extend turn by turn
            raise BadRequest(str(error)) from None
        return example.prompt_ids or self._fallback()

    def text_prompt_ids(self, prompt: str) -> list[int]:
        """A raw completion prompt, tokenized as it is (markers written in it are the run's
        special tokens; nothing is added)."""
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a text")
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"] or self._fallback()

    def _fallback(self) -> list[int]:
        tokenizer = self.tokenizer
        return [tokenizer.bos_token_id if tokenizer.bos_token_id is not None
                else tokenizer.eos_token_id]

    def generate_kwargs(self, settings: Settings) -> dict:
        """generation.generation_kwargs of the run's prediction settings, with these on top."""
        from tui_tune.train.generation import generation_kwargs

        prediction = self.exp.prediction.model_copy(update={
            "do_sample": settings.temperature > 0, "temperature": settings.temperature,
            "top_p": settings.top_p, "top_k": settings.top_k,
            "max_new_tokens": settings.max_new_tokens,
            "min_new_tokens": min(self.exp.prediction.min_new_tokens, settings.max_new_tokens),
            "repetition_penalty": settings.repetition_penalty,
            "stop_strings": list(settings.stop), "num_beams": 1})
        return generation_kwargs(prediction, self.tokenizer)

    def stream(self, prompt_ids: list[int], settings: Settings, reply: Reply,
               cancel: threading.Event | None = None) -> Iterator[str]:
        """The answer's text as it is written (stop strings held back and cut off); `reply`
        is filled in when the iterator ends. Closing the iterator early stops generation."""
        from transformers import StoppingCriteriaList

        cancel = cancel or threading.Event()
        streamer = counting_streamer(self.tokenizer)
        ids = torch.tensor([prompt_ids], device=self.accelerator.device)
        kwargs = {**self.generate_kwargs(settings), "streamer": streamer, "use_cache": True,
                  "stopping_criteria": StoppingCriteriaList([_Cancelled(cancel)])}
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with torch.no_grad(), self.accelerator.autocast():  # autocast is per thread
                    self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                        **kwargs)
            except BaseException as error:  # noqa: BLE001 - handed to the reading side
                failure.append(error)
                streamer.end()

        thread = threading.Thread(target=work, name="generate", daemon=True)
        reply.prompt_tokens = len(prompt_ids)
        thread.start()
        text, shown, stopped, exhausted = "", 0, False, False
        try:
            for piece in streamer:
                text += piece
                visible, stopped = held_back(text, settings.stop)
                if len(visible) > shown:
                    yield visible[shown:]
                    shown = len(visible)
                if stopped:
                    break
            else:
                exhausted = True
                if len(text) > shown:  # the held-back end that became no stop string
                    yield text[shown:]
                    shown = len(text)
        finally:
            if not exhausted:  # a stop string, or the reader left: end generate, then drain
                cancel.set()
                for _ in streamer:
                    pass
            thread.join()
        if failure:
            raise failure[0]
        reply.text = text[:shown]
        reply.completion_tokens = streamer.tokens
        ended_early = streamer.tokens < settings.max_new_tokens  # the end token came first
        reply.finish_reason = "stop" if stopped or ended_early else "length"

    def complete(self, prompt_ids: list[int], settings: Settings) -> Reply:
        reply = Reply()
        for _ in self.stream(prompt_ids, settings, reply):
            pass
        return reply


def base_model(exp, tokenizer, data, device):
    """The run's backbone (and general.pretrained_weights) as training loaded it, without the
    adapter or the training's weights: what the run started from."""
    from tui_tune.train.model import load_backbone

    model = load_backbone(exp, tokenizer, device, data)
    if exp.architecture.backbone_dtype not in ("int4", "int8"):  # those are placed already
        model = model.to(device)
    return model.eval()


def load_quietly(run_dir: Path, checkpoint: str | None = None, base: bool = False) -> LoadedRun:
    """LoadedRun without transformers' progress bars and advice on stderr (the CLI's)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return LoadedRun(run_dir, checkpoint, base)

"""prediction.metric = "llm_judge" (H2O LLM Studio's GPT metric): each validation answer and its
reference go to an OpenAI-compatible chat endpoint with a grading template; the judge's reply
ends with `SCORE: <number>` (mt-bench also `[[n]]`), and the metric is the mean score on the
template's scale (general: 0 to 1, mt-bench: 1 to 10, a user file: its own).

Requests run at most judge_concurrency at once (aiohttp), a failed one (connection, timeout,
429, 5xx) is retried judge_retries times with exponential backoff (1, 2, 4... s), at most
judge_max_requests rows are judged per evaluation. A reply without a score is counted
(`judge_unparsed`), a request that failed for good too (`judge_failed`); neither stops
training. The API key is read from the environment variable judge_api_key_env names, never
stored.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tui_tune.config.training_groups import JUDGE_TEMPLATES

SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
# H2O LLM Studio's prompts/general.txt (scale 0 to 1)
GENERAL = """[System]
We would like to request your feedback on the performance of an AI assistant in response to \
the user question and ground truth answer displayed below.

[Question]
{_PROMPT}

[Start of Reference Answer]
{_TARGET_TEXT}
[End of Reference Answer]

[Task]
Now rate the helpfulness, relevance, accuracy, level of details of the response from another \
assistant displayed below. The assistant receives an overall score on a scale between 0 and 1, \
where a higher score indicates better overall performance.
A score of 0 means the assistant could not address the question, 0.5 means it could somewhat \
address it, and 1 would mean it perfectly addressed it.

Please first provide a comprehensive explanation of your evaluation.
In the final line, output a single value indicating the score for the assistant.
Please give your response in structured way in two separate lines.
EXPLANATION: ...
SCORE: ...

[Start of Assistant Answer]
{_PREDICTED_TEXT}
[End of Assistant Answer]"""
# MT-bench's single-answer grading with a reference (scale 1 to 10), in H2O's two-line form
MT_BENCH = """[Instruction]
Please act as an impartial judge and evaluate the quality of the response provided by an AI \
assistant to the user question displayed below. Your evaluation should consider correctness \
and helpfulness. You will be given a reference answer and the assistant's answer. Begin your \
evaluation by comparing the assistant's answer with the reference answer. Identify and correct \
any mistakes. Be as objective as possible. After providing your explanation, you must rate the \
response on a scale of 1 to 10 by strictly following this format in two lines:
EXPLANATION: ...
SCORE: ...

[Question]
{_PROMPT}

[The Start of Reference Answer]
{_TARGET_TEXT}
[The End of Reference Answer]

[The Start of Assistant's Answer]
{_PREDICTED_TEXT}
[The End of Assistant's Answer]"""
TEMPLATES = {"general": GENERAL, "mt-bench": MT_BENCH}
assert tuple(TEMPLATES) == JUDGE_TEMPLATES  # the config's names (runs/preflight checks them)

SCORE = re.compile(r"SCORE\s*:\s*\**\s*\[*\s*([-+]?\d+(?:\.\d+)?)", re.IGNORECASE)
BRACKETED = re.compile(r"\[\[\s*([-+]?\d+(?:\.\d+)?)\s*\]\]")
EXPLANATION = re.compile(r"^\s*EXPLANATION\s*:\s*", re.IGNORECASE)
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
EXAMPLES_KEPT = 4  # judged answers with their reason in each eval event
BACKOFF_S = 1.0


@dataclass
class Verdict:
    prompt: str
    answer: str
    reference: str
    score: float | None = None  # None: no reply, or no score in it
    reason: str = ""
    failed: str = ""  # why no reply came


@dataclass
class Judgement:
    score: float  # the mean of the scores found; NaN when none
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def unparsed(self) -> int:
        return sum(1 for v in self.verdicts if v.score is None and not v.failed)

    @property
    def failed(self) -> int:
        return sum(1 for v in self.verdicts if v.failed)

    def event_fields(self) -> dict:
        """The eval event's llm_judge fields (events.Eval)."""
        examples = [{"prompt": v.prompt, "answer": v.answer, "reference": v.reference,
                     "score": v.score, "reason": v.reason or v.failed}
                    for v in self.verdicts[:EXAMPLES_KEPT]]
        return {"llm_judge": self.score, "judge_unparsed": self.unparsed,
                "judge_failed": self.failed, "judge_examples": examples}


def template_text(name: str) -> str:
    return TEMPLATES[name] if name in TEMPLATES else \
        Path(name).expanduser().read_text(encoding="utf-8")


def fill(template: str, prompt: str, reference: str, answer: str) -> str:
    """The placeholders replaced as plain text (braces in answers or templates stay as they
    are, unlike str.format)."""
    return (template.replace("{_PROMPT}", prompt).replace("{_TARGET_TEXT}", reference)
            .replace("{_PREDICTED_TEXT}", answer))


def parse(reply: str) -> tuple[float | None, str]:
    """(the score, the judge's reason): the last `SCORE: n` in the reply, else its last
    `[[n]]` (MT-bench), else its first word when that is a number (H2O reads replies so);
    the reason is what comes before the score line, or the whole reply."""
    text = reply.strip()
    found = list(SCORE.finditer(text)) or list(BRACKETED.finditer(text))
    if found:
        last = found[-1]
        reason = EXPLANATION.sub("", text[:last.start()].strip()).strip()
        return _finite(last.group(1)), reason or text
    first = text.split(maxsplit=1)[0] if text else ""
    return _finite(first), text


def _finite(word: str) -> float | None:
    try:
        value = float(word)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def chat_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/chat/completions"


async def ask(session: aiohttp.ClientSession, prediction, headers: dict, text: str) -> str:
    """The judge's reply; retried with backoff on what may pass. Raises RuntimeError with the
    reason when no reply came."""
    body = {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": text}],
            "temperature": 0.0, "max_tokens": 1024}
    if prediction.judge_model:
        body["model"] = prediction.judge_model
    timeout = aiohttp.ClientTimeout(total=prediction.judge_timeout)
    why = ""
    for attempt in range(prediction.judge_retries + 1):
        if attempt:
            await asyncio.sleep(BACKOFF_S * 2 ** (attempt - 1))
        try:
            async with session.post(chat_url(prediction.judge_base_url), json=body,
                                    headers=headers, timeout=timeout) as response:
                if response.status == 200:
                    reply = await response.json(content_type=None)
                    return str(reply["choices"][0]["message"]["content"] or "")
                why = f"HTTP {response.status}: {(await response.text())[:200]}"
                if response.status not in RETRY_STATUSES:
                    break
        except (TimeoutError, aiohttp.ClientError) as error:
            why = f"{type(error).__name__}: {error}"[:200]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            why = f"a reply that is not a chat completion ({error})"
            break
    raise RuntimeError(why or "no reply")


async def judge_async(items: list[tuple[str, str, str]], prediction) -> list[Verdict]:
    template = template_text(prediction.judge_template)
    headers = {}
    if prediction.judge_api_key_env:
        headers["Authorization"] = f"Bearer {os.environ.get(prediction.judge_api_key_env, '')}"
    gate = asyncio.Semaphore(prediction.judge_concurrency)

    async def one(session, prompt: str, answer: str, reference: str) -> Verdict:
        verdict = Verdict(prompt, answer, reference)
        async with gate:
            try:
                reply = await ask(session, prediction, headers,
                                  fill(template, prompt, reference, answer))
            except RuntimeError as error:
                verdict.failed = str(error)
                return verdict
        verdict.score, verdict.reason = parse(reply)
        return verdict

    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(one(session, *item) for item in items)))


def judge(items: list[tuple[str, str, str]], prediction) -> Judgement:
    """(prompt, answer, reference) triples, the first judge_max_requests of them, judged."""
    items = items[:prediction.judge_max_requests]
    verdicts = asyncio.run(judge_async(items, prediction)) if items else []
    scores = [v.score for v in verdicts if v.score is not None]
    return Judgement(sum(scores) / len(scores) if scores else math.nan, verdicts)

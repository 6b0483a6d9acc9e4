"""Extractive question answering (SQuAD style): the answer is a span of the context, found by an
encoder's start and end scores per token (`AutoModelForQuestionAnswering`: BertForQuestionAnswering,
RobertaForQuestionAnswering...).

Rows hold a question, a context and the answer as written in the context (runs/qa_rows.py reads
and checks them, as the launch preflight does); an empty answer means the context does not
answer it (SQuAD v2). As transformers' question-answering examples do (run_qa.py:
prepare_train_features, postprocess_qa_predictions), the fast tokenizer cuts a long context into
windows of tokenizer.max_length tokens that overlap by dataset.doc_stride tokens
(return_overflowing_tokens), and its offset mapping maps tokens back to context characters. A
window is labelled with the answer's first and last token, or with the [CLS] position when the
answer is not wholly inside it (or there is none). The loss is the model's own
(start_positions/end_positions). A question's prediction is the best span over its windows, at
most prediction.max_answer_length tokens long; when the training data holds questions without an
answer, "no answer" wins where the windows' lowest [CLS] score beats the best span. Scores are
SQuAD's exact match and F1 (train/qa_metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tui_tune.runs import qa_rows
from tui_tune.train.data import SplitData, check_columns, read_rows, split_rows
from tui_tune.train.errors import UserError
from tui_tune.train.qa_metrics import squad_scores
from tui_tune.train.tasks.base import EvalResult, Task

TRAIN, VALIDATION = "dataset.train_file", "dataset.validation_file"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class Question:
    """One row: its question and context, and its answer ("" and no span: none)."""
    question: str
    context: str
    answer: str = ""
    span: tuple[int, int] | None = None


@dataclass
class QAWindow:
    """One window of a question's context as the model reads it: the tokens (question first,
    then a piece of the context), the labelled start and end token (the [CLS] position when
    the answer is not in this window), each token's [start, end) characters in the context
    (None for question and special tokens) and which question of the split it belongs to."""
    input_ids: list[int]
    token_type_ids: list[int] | None
    start: int
    end: int
    offsets: list[tuple[int, int] | None]
    index: int
    cls: int
    row: Question

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class QAData(SplitData):
    unanswerable: bool = False  # whether the training rows hold questions without an answer


class ExtractiveQA(Task):
    name = "extractive_qa"
    auto_model = "AutoModelForQuestionAnswering"
    peft_task_type = "QUESTION_ANS"  # peft then trains and saves qa_outputs too
    head_modules = ("qa_outputs",)
    head_is_new = True

    def __init__(self):
        self.unanswerable = False  # "no answer" is predicted only when training saw some

    def load_data(self, exp, tokenizer, seed: int) -> QAData:
        data = load_windows(exp, tokenizer, seed)
        self.unanswerable = data.unanswerable
        return data

    def train_collator(self, exp, tokenizer):
        return QACollator(tokenizer.pad_token_id)

    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        return model(**model_inputs(batch), start_positions=batch["start_positions"],
                     end_positions=batch["end_positions"]).loss

    def evaluate(self, model, tokenizer, examples: list[QAWindow], accelerator,
                 exp) -> EvalResult:
        return evaluate(model, tokenizer, examples, accelerator, exp, self.unanswerable)

    def predict_setup(self, exp, tokenizer, seed: int) -> None:
        """Whether training saw questions without an answer (read as training read them)."""
        self.unanswerable = any(q.span is None for q in
                                questions_of(training_rows(exp, seed)[0], exp.dataset))

    def predict(self, model, tokenizer, rows, accelerator, exp, progress=None):
        """The answer text of each row (`prediction`, "" for none) and its start in the
        context in characters (`prediction_start`, empty for none)."""
        from accelerate.utils import gather_object

        ds = exp.dataset
        questions = [Question(str(r[ds.question_column]), str(r[ds.context_column]))
                     for r in rows]
        windows = encode(questions, tokenizer, exp)
        model.eval()
        _, mine = predict(model, windows, accelerator, exp, tokenizer.pad_token_id,
                          self.unanswerable, progress)
        if accelerator.num_processes > 1:
            mine = gather_object(mine)
        if not accelerator.is_main_process:
            return None
        by_index = {i: span for i, span in mine}
        out = []
        for i, question in enumerate(questions):
            span = by_index.get(i)
            out.append({"prediction": question.context[span[0]:span[1]] if span else "",
                        "prediction_start": span[0] if span else None})
        return out


def training_rows(exp, seed: int) -> tuple[list[dict], list[dict]]:
    """The training file read, checked and split."""
    ds = exp.dataset
    rows = read_rows(ds.train_file, TRAIN, ds)
    check_columns(rows, ds, TRAIN, ds.train_file, exp.general.problem_type)
    return split_rows(rows, ds, seed)


def questions_of(rows: list[dict], ds) -> list[Question]:
    return [Question(str(r[ds.question_column]), str(r[ds.context_column]),
                     qa_rows.answer_text(r, ds) if (span := qa_rows.answer_span(r, ds)) else "",
                     span) for r in rows]


def load_windows(exp, tokenizer, seed: int) -> QAData:
    ds, kind = exp.dataset, exp.general.problem_type
    train_rows, val_rows = training_rows(exp, seed)
    if ds.validation_strategy == "custom":
        val_rows = read_rows(ds.validation_file or "", VALIDATION, ds)
        check_columns(val_rows, ds, VALIDATION, ds.validation_file, kind)
    train_q, val_q = questions_of(train_rows, ds), questions_of(val_rows, ds)
    train, val = encode(train_q, tokenizer, exp), encode(val_q, tokenizer, exp)
    extra = val if exp.training.train_on_validation else []
    return QAData(train + extra, val, warnings=window_notes(train_q, train, exp),
                  unanswerable=any(q.span is None for q in train_q))


def encode(questions: list[Question], tokenizer, exp) -> list[QAWindow]:
    """Questions -> windows (run_qa.py's prepare_train_features): the question, then as much
    of the context as fits in tokenizer.max_length, the next window starting doc_stride
    tokens before the previous one ended."""
    if not questions:
        return []
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("extractive QA needs a fast tokenizer (one that maps tokens back to "
                        "characters of the context); this backbone's tokenizer is not one.",
                        "general.backbone")
    max_length, stride = exp.tokenizer.max_length, exp.dataset.doc_stride
    asked = [q.question.lstrip() for q in questions]
    too_long = room_problem(asked, tokenizer, max_length, stride)
    if too_long:
        raise UserError(too_long, "dataset.doc_stride")
    encoded = tokenizer(asked, [q.context for q in questions], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
    windows = []
    for n, ids in enumerate(encoded["input_ids"]):
        index = encoded["overflow_to_sample_mapping"][n]
        sequence = encoded.sequence_ids(n)
        offsets = [tuple(o) if sequence[k] == 1 else None
                   for k, o in enumerate(encoded["offset_mapping"][n])]
        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        start, end = answer_tokens(offsets, questions[index].span, cls)
        types = encoded["token_type_ids"][n] if "token_type_ids" in encoded else None
        windows.append(QAWindow(ids, types, start, end, offsets, index, cls, questions[index]))
    return windows


def room_problem(asked: list[str], tokenizer, max_length: int, stride: int) -> str | None:
    """A message when a question leaves no more than doc_stride tokens of a window for the
    context (the tokenizers library would abort the process on it)."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [len(ids) for ids in tokenizer(asked, add_special_tokens=False)["input_ids"]]
    longest = max(range(len(asked)), key=lengths.__getitem__)
    room = max_length - specials - lengths[longest]
    if room > stride:
        return None
    return (f"the question {asked[longest][:60]!r} takes {lengths[longest]} of "
            f"tokenizer.max_length = {max_length} tokens, which leaves {max(room, 0)} for the "
            f"context: fewer than doc_stride = {stride} + 1; lower doc_stride or raise "
            "max_length.")


def answer_tokens(offsets: list[tuple[int, int] | None], span: tuple[int, int] | None,
                  cls: int) -> tuple[int, int]:
    """The first and last token of the answer's characters in this window; (cls, cls) when
    there is no answer or it is not wholly inside the window (run_qa.py's labels)."""
    inside = [k for k, o in enumerate(offsets) if o is not None]
    if span is None or not inside:
        return cls, cls
    first, last = inside[0], inside[-1]
    if not (offsets[first][0] <= span[0] and offsets[last][1] >= span[1]):
        return cls, cls
    start = max(k for k in inside if offsets[k][0] <= span[0])
    end = min(k for k in inside if offsets[k][1] >= span[1])
    return start, end


def window_notes(questions: list[Question], windows: list[QAWindow], exp) -> list[str]:
    """How many contexts were read in several windows, and answers no window holds whole."""
    notes = []
    if len(windows) > len(questions):
        notes.append(f"{len(windows) - len(questions)} more windows than questions: long "
                     f"contexts are read in windows of tokenizer.max_length = "
                     f"{exp.tokenizer.max_length} tokens overlapping by doc_stride = "
                     f"{exp.dataset.doc_stride}")
    held = {w.index for w in windows if w.start != w.cls}
    lost = sum(1 for i, q in enumerate(questions) if q.span is not None and i not in held)
    if lost:
        notes.append(f"{lost} answers are longer than any window holds: they are learned as "
                     "'no answer'; raise tokenizer.max_length or doc_stride")
    return notes


class QACollator:
    """Pads windows on the right (the labelled positions stay where they are) and stacks the
    start and end positions."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, windows: list[QAWindow]) -> dict[str, torch.Tensor]:
        width = max(len(w) for w in windows)
        ids = torch.full((len(windows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), width), dtype=torch.long)
        types = torch.zeros((len(windows), width), dtype=torch.long)
        for row, w in enumerate(windows):
            ids[row, :len(w)] = torch.tensor(w.input_ids)
            mask[row, :len(w)] = 1
            if w.token_type_ids is not None:
                types[row, :len(w)] = torch.tensor(w.token_type_ids)
        batch = {"input_ids": ids, "attention_mask": mask,
                 "start_positions": torch.tensor([w.start for w in windows]),
                 "end_positions": torch.tensor([w.end for w in windows])}
        if windows[0].token_type_ids is not None:
            batch["token_type_ids"] = types
        return batch


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k in INPUTS}


def best_span(window: QAWindow, start_logits: torch.Tensor, end_logits: torch.Tensor,
              max_answer_length: int) -> tuple[float, tuple[int, int] | None]:
    """The window's best (score, [start, end) characters): start + end score over token pairs
    inside the context, end not before start, at most max_answer_length tokens."""
    n = len(window)
    inside = torch.tensor([o is not None for o in window.offsets])
    first = torch.arange(n)[:, None]
    last = torch.arange(n)[None, :]
    valid = inside[:, None] & inside[None, :] & (last >= first) \
        & (last - first < max_answer_length)
    if not bool(valid.any()):
        return float("-inf"), None
    scores = (start_logits[:n, None] + end_logits[None, :n]).masked_fill(~valid, float("-inf"))
    best = int(scores.argmax())
    s, e = divmod(best, n)
    return float(scores[s, e]), (window.offsets[s][0], window.offsets[e][1])


def answer_of(windows: list[QAWindow], logits: list[tuple[torch.Tensor, torch.Tensor]],
              max_answer_length: int, unanswerable: bool) -> tuple[int, int] | None:
    """A question's answer span over its windows (postprocess_qa_predictions): the best span;
    None ("no answer") when allowed and the lowest [CLS] score of its windows is higher."""
    best_score, best = float("-inf"), None
    null = float("inf")
    for window, (start, end) in zip(windows, logits, strict=True):
        score, span = best_span(window, start, end, max_answer_length)
        if span is not None and score > best_score:
            best_score, best = score, span
        null = min(null, float(start[window.cls] + end[window.cls]))
    if unanswerable and (best is None or null > best_score):
        return None
    return best


@torch.no_grad()
def predict(model, windows: list[QAWindow], accelerator, exp, pad_id: int, unanswerable: bool,
            progress=None) -> tuple[torch.Tensor, list[tuple[int, tuple[int, int] | None]]]:
    """This rank's share of the questions (every world-th, with all their windows): (the loss
    sum over their windows and the window count, each question's answer span by index);
    progress(n) per batch of n questions' windows done."""
    rank, world = accelerator.process_index, accelerator.num_processes
    by_question: dict[int, list[int]] = {}
    for k, w in enumerate(windows):
        if w.index % world == rank:
            by_question.setdefault(w.index, []).append(k)
    mine = [k for ks in by_question.values() for k in ks]
    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    logits: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    collate = QACollator(pad_id)
    size = exp.prediction.batch_size or exp.training.batch_size
    for at in range(0, len(mine), size):
        chunk = mine[at:at + size]
        batch = {k: v.to(accelerator.device) for k, v in
                 collate([windows[k] for k in chunk]).items()}
        with accelerator.autocast():
            out = model(**model_inputs(batch))
        start, end = out.start_logits.float(), out.end_logits.float()
        total[0] += ((F.cross_entropy(start, batch["start_positions"], reduction="sum")
                      + F.cross_entropy(end, batch["end_positions"], reduction="sum")) / 2
                     ).double()
        total[1] += len(chunk)
        for row, k in enumerate(chunk):
            logits[k] = (start[row].cpu(), end[row].cpu())
        if progress is not None:
            progress(len({windows[k].index for k in chunk}))
    answers = [(i, answer_of([windows[k] for k in ks], [logits[k] for k in ks],
                             exp.prediction.max_answer_length, unanswerable))
               for i, ks in by_question.items()]
    return total, answers


def evaluate(model, tokenizer, windows: list[QAWindow], accelerator, exp,
             unanswerable: bool) -> EvalResult:
    """Every rank predicts its share of the questions; the loss is summed and the answers
    gathered, so every rank scores all questions the same way. Samples on rank 0."""
    from accelerate.utils import gather_object

    model.eval()
    total, mine = predict(model, windows, accelerator, exp, tokenizer.pad_token_id, unanswerable)
    model.train()
    if accelerator.num_processes > 1:
        total = accelerator.reduce(total, reduction="sum")
        mine = gather_object(mine)
    by_index = dict(mine)
    questions = {w.index: w.row for w in windows}
    order = sorted(questions)
    predicted = [text_of(questions[i].context, by_index.get(i)) for i in order]
    values = squad_scores([[questions[i].answer] for i in order], predicted)
    samples = []
    if accelerator.is_main_process:
        samples = [sample(questions[i], by_index.get(i))
                   for i in order[:exp.prediction.num_samples]]
    metric = exp.prediction.metric
    return EvalResult(float(total[0] / total[1].clamp(min=1)), metric, values[metric], values,
                      samples)


def text_of(context: str, span: tuple[int, int] | None) -> str:
    return context[span[0]:span[1]] if span else ""


def sample(question: Question, span: tuple[int, int] | None) -> dict[str, Any]:
    """The monitor's sample: the question, the predicted and the true answer ("" for none),
    and the context with both spans, which the samples panel marks."""
    predicted = text_of(question.context, span)
    return {"prompt": question.question, "generation": predicted or "(no answer)",
            "reference": question.answer or "(no answer)", "predicted": predicted,
            "truth": question.answer, "context": question.context,
            "span": list(span) if span else None,
            "truth_span": list(question.span) if question.span else None}

"""Sequence to sequence (summarization, translation, any text -> text) on an encoder-decoder
(`AutoModelForSeq2SeqLM`: T5, BART, mT5, Marian...).

The source is the prompt columns (joined with their separator) after dataset.task_prefix (T5
style, "translate English to German: "), cut to tokenizer.max_length; the target is the answer
column, cut to tokenizer.max_target_length. Both are tokenized as transformers' own seq2seq
examples do (`tokenizer(source)`, `tokenizer(text_target=target)`: the tokenizer's special
tokens, e.g. T5's closing </s>, and a multilingual tokenizer's language codes from
dataset.source_language / target_language). Both are cut at their end (as run_summarization
does), so the task prefix stays. The loss is the model's own `labels=` loss (padding -> -100;
the decoder's inputs are the labels shifted right by the model). The evaluation generates an
output for every validation row (each rank a share) and scores it with ROUGE-1/2/L
(rouge-score), BLEU and chrF (sacrebleu), besides the validation loss and perplexity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tui_tune.train import metrics
from tui_tune.train.data import SplitData, read_split_rows
from tui_tune.train.errors import UserError
from tui_tune.train.formatting import IGNORE_INDEX, prompt_of
from tui_tune.train.generation import generate_all, generation_kwargs
from tui_tune.train.tasks.base import EvalResult, Task, token_mean_loss


@dataclass
class Seq2SeqExample:
    """One row: source tokens, target tokens (the labels), and both texts for samples."""
    input_ids: list[int]
    labels: list[int]
    source: str
    target: str

    def __len__(self) -> int:
        """The source's length: batches are planned and grouped by it (the encoder's work)."""
        return len(self.input_ids)


class Seq2Seq(Task):
    name = "seq2seq"
    auto_model = "AutoModelForSeq2SeqLM"
    peft_task_type = "SEQ_2_SEQ_LM"
    head_modules = ("lm_head",)

    def load_data(self, exp, tokenizer, seed: int) -> SplitData:
        return load_examples(exp, tokenizer, seed)

    def train_collator(self, exp, tokenizer):
        return Seq2SeqCollator(tokenizer.pad_token_id)

    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        return training_loss(model, batch, exp.training.loss)

    def evaluate(self, model, tokenizer, examples: list[Seq2SeqExample], accelerator,
                 exp) -> EvalResult:
        return evaluate(model, tokenizer, examples, accelerator, exp)

    def predict(self, model, tokenizer, rows, accelerator, exp, progress=None):
        """The generated output of each row (prediction.* settings), as `prediction`."""
        examples = source_examples(rows, exp, tokenizer)
        outputs = generate_all(model, tokenizer, examples, exp, accelerator, progress,
                               answers=generate_outputs)
        return None if outputs is None else [{"prediction": text} for text in outputs]


def use_languages(tokenizer, ds) -> None:
    """A multilingual tokenizer (mBART, NLLB, M2M100) takes the languages as src_lang /
    tgt_lang, which choose the codes it puts around the source and the target."""
    for name, value in (("src_lang", ds.source_language), ("tgt_lang", ds.target_language)):
        if value and hasattr(tokenizer, name):
            setattr(tokenizer, name, value)


def source_texts(rows: list[dict[str, Any]], ds) -> list[str]:
    return [ds.task_prefix + prompt_of(r, ds.prompt_columns, ds.prompt_column_separator)
            for r in rows]


def encode(tokenizer, texts: list[str], max_length: int, target: bool = False) -> list[list[int]]:
    """Token ids with the tokenizer's special tokens, cut at the end to max_length."""
    if not texts:
        return []
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "right"
    try:
        key = "text_target" if target else "text"
        return tokenizer(**{key: texts}, truncation=True, max_length=max_length)["input_ids"]
    finally:
        tokenizer.truncation_side = side


def make_examples(rows: list[dict[str, Any]], exp, tokenizer) -> list[Seq2SeqExample]:
    ds, tok = exp.dataset, exp.tokenizer
    sources = source_texts(rows, ds)
    targets = [str(r.get(ds.answer_column) or "") for r in rows]
    source_ids = encode(tokenizer, sources, tok.max_length)
    target_ids = encode(tokenizer, targets, tok.max_target_length, target=True)
    return [Seq2SeqExample(s, t, source, target)
            for s, t, source, target in zip(source_ids, target_ids, sources, targets)]


def source_examples(rows: list[dict[str, Any]], exp, tokenizer) -> list[Seq2SeqExample]:
    """Test rows: their source alone (an answer column, if there, is not read)."""
    use_languages(tokenizer, exp.dataset)
    ds = exp.dataset
    sources = source_texts(rows, ds)
    return [Seq2SeqExample(ids, [], text, "") for ids, text in
            zip(encode(tokenizer, sources, exp.tokenizer.max_length), sources)]


def load_examples(exp, tokenizer, seed: int) -> SplitData:
    ds = exp.dataset
    for setting in ("parent_id_column", "system_column"):
        if getattr(ds, setting):
            raise UserError("seq2seq reads one source and one target per row; chained "
                            "conversations and system messages are not read: leave it empty.",
                            f"dataset.{setting}")
    use_languages(tokenizer, ds)
    rows = read_split_rows(exp, seed)
    train, val = make_examples(rows.train, exp, tokenizer), make_examples(rows.val, exp,
                                                                          tokenizer)
    extra = val if exp.training.train_on_validation else []
    return SplitData(train + extra, val, None, cut_notes(train + val, exp))


def cut_notes(examples: list[Seq2SeqExample], exp) -> list[str]:
    """One line per side that max_length / max_target_length cut (the end is lost)."""
    tok, notes = exp.tokenizer, []
    for what, setting, longest, lengths in (
            ("sources", "tokenizer.max_length", tok.max_length,
             [len(e.input_ids) for e in examples]),
            ("targets", "tokenizer.max_target_length", tok.max_target_length,
             [len(e.labels) for e in examples])):
        cut = sum(1 for n in lengths if n >= longest)
        if cut:
            notes.append(f"{setting} = {longest} may have cut the end of {cut} of "
                         f"{len(examples)} {what}.")
    return notes


class Seq2SeqCollator:
    """Sources padded (right) with the padding token and an attention mask; targets padded
    with -100, which the loss ignores (the model shifts them right into decoder inputs, the
    padding becoming the padding token), as transformers' DataCollatorForSeq2Seq does."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: list[Seq2SeqExample]) -> dict[str, torch.Tensor]:
        width = max(len(e.input_ids) for e in examples)
        target_width = max(max(len(e.labels) for e in examples), 1)
        ids = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        labels = torch.full((len(examples), target_width), IGNORE_INDEX, dtype=torch.long)
        for row, ex in enumerate(examples):
            ids[row, :len(ex.input_ids)] = torch.tensor(ex.input_ids, dtype=torch.long)
            mask[row, :len(ex.input_ids)] = 1
            labels[row, :len(ex.labels)] = torch.tensor(ex.labels, dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}


def training_loss(model, batch: dict[str, torch.Tensor], mode: str) -> torch.Tensor:
    """token_avg_ce is the model's own `labels=` loss; sample_avg_ce averages each row's
    target tokens first (from the same logits), then the rows."""
    out = model(**model_inputs(batch), use_cache=False)
    if mode == "token_avg_ce":
        return out.loss
    return sample_average(out.logits, batch["labels"])


def sample_average(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    losses = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(),
                             ignore_index=IGNORE_INDEX, reduction="none").view_as(labels)
    counts = (labels != IGNORE_INDEX).sum(dim=1)
    rows = counts > 0
    return (losses.sum(dim=1)[rows] / counts[rows]).mean() if rows.any() else losses.sum()


def validation_loss(model, examples: list[Seq2SeqExample], accelerator, batch_size: int,
                    pad_id: int) -> float:
    """Target-token-averaged loss over the validation rows; each rank takes every world-th."""
    def summed(model, batch):
        logits = model(**model_inputs(batch), use_cache=False).logits
        labels = batch["labels"]
        return (F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(),
                                ignore_index=IGNORE_INDEX, reduction="sum"),
                (labels != IGNORE_INDEX).sum())

    return token_mean_loss(model, examples, Seq2SeqCollator(pad_id), accelerator, batch_size,
                           summed)


@torch.no_grad()
def generate_outputs(model, tokenizer, examples: list[Seq2SeqExample], prediction, device,
                     batch_size: int | None = None) -> list[str]:
    """The decoder's output for each source (greedy/sampled/beam as prediction.* says), in
    batches; a target_language that is one of the tokenizer's tokens (mBART, NLLB codes)
    starts every output, as those models need."""
    kwargs = generation_kwargs(prediction, tokenizer)
    language = getattr(tokenizer, "tgt_lang", None)
    if language:
        code = tokenizer.convert_tokens_to_ids(language)
        if code is not None and code != tokenizer.unk_token_id:
            kwargs["forced_bos_token_id"] = code
    size = batch_size or prediction.batch_size or 8
    collate = Seq2SeqCollator(tokenizer.pad_token_id)
    was_training = model.training
    model.eval()
    texts: list[str] = []
    for start in range(0, len(examples), size):
        batch = collate(examples[start:start + size])
        out = model.generate(input_ids=batch["input_ids"].to(device),
                             attention_mask=batch["attention_mask"].to(device), use_cache=True,
                             **kwargs)
        texts += [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
    if was_training:
        model.train()
    return texts


def evaluate(model, tokenizer, examples: list[Seq2SeqExample], accelerator,
             exp) -> EvalResult:
    """The loss on every rank; an output generated for every validation row (each rank a
    share, gathered on rank 0), scored there; the samples from rank 0. Where no output can be
    generated (sharded weights that are whole on no rank) the metric is the perplexity."""
    pred = exp.prediction
    loss = validation_loss(model, examples, accelerator, exp.training.batch_size,
                           tokenizer.pad_token_id)
    values = {"perplexity": metrics.perplexity(loss)}
    try:
        outputs = generate_all(model, tokenizer, examples, exp, accelerator,
                               answers=generate_outputs) if examples else []
    except UserError:  # DeepSpeed ZeRO-3 / FSDP2: no whole weights to generate with
        outputs = None
    samples = []
    if outputs is not None:
        values.update(metrics.text_scores(outputs, [e.target for e in examples]))
        samples = [{"prompt": e.source, "generation": out, "reference": e.target}
                   for e, out in zip(examples[:pred.num_samples], outputs)]
    metric = pred.metric if pred.metric in values else "perplexity"
    return EvalResult(loss, metric, values[metric], values, samples)

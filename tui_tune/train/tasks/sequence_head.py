"""What classification and regression share: one text per row read by a head that gives one
vector (transformers' AutoModelForSequenceClassification: a causal LM's last non-padding token,
an encoder's first token), the rows' texts, the padded batches, and predictions over the
validation rows gathered from every rank.

The text is what a causal_lm prompt is (formatting.py: the system column, the prompt columns
with their separator, the text markers or the chat template), without an answer, as H2O's
causal classification reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tui_tune.train.collate import PaddedCollator
from tui_tune.train.data import SplitData, check_columns, read_rows, split_rows
from tui_tune.train.errors import UserError
from tui_tune.train.formatting import Conversation, Turn, chat_pieces, prompt_of, text_pieces
from tui_tune.train.tasks.base import Task


@dataclass
class TextExample:
    """One row: its tokens, its target (a class id, or a vector of floats: 0/1 flags or
    regression targets), the prompt text and the truth as shown in samples."""
    input_ids: list[int]
    target: Any
    text: str
    truth: str

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class HeadRows:
    """The rows of a run, split: the whole training file (labels are counted there), the
    training and the validation rows, and which file each validation row came from."""
    all_train: list[dict[str, Any]]
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    val_setting: str
    val_file: str


def read_split_rows(exp, seed: int) -> HeadRows:
    """The data files read and checked as the launch preflight checks them, then split."""
    ds, kind = exp.dataset, exp.general.problem_type
    if ds.parent_id_column:
        raise UserError(f"{kind} reads one row per example; chained conversations are not "
                        "supported (as in H2O): leave it empty.", "dataset.parent_id_column")
    rows = read_rows(ds.train_file, "dataset.train_file", ds)
    check_columns(rows, ds, "dataset.train_file", ds.train_file, kind)
    train, val = split_rows(rows, ds, seed)
    if ds.validation_strategy == "custom":
        val = read_rows(ds.validation_file or "", "dataset.validation_file", ds)
        check_columns(val, ds, "dataset.validation_file", ds.validation_file, kind)
        return HeadRows(rows, train, val, "dataset.validation_file", ds.validation_file or "")
    return HeadRows(rows, train, val, "dataset.train_file", ds.train_file)


def row_text(row: dict[str, Any], ds) -> str:
    return prompt_of(row, ds.prompt_columns, ds.prompt_column_separator)


def encode_texts(rows: list[dict[str, Any]], exp, tokenizer) -> list[list[int]]:
    """Each row's prompt as causal_lm formats it (its answer left out), cut to max_length as
    truncation_side says. A tokenizer without a begin token (BERT-style, Qwen) gets its own
    special tokens ([CLS] ... [SEP]) around what is kept."""
    ds, tok = exp.dataset, exp.tokenizer
    make_pieces = chat_pieces if ds.use_chat_template else text_pieces
    texts = []
    for row in rows:
        system = str(row.get(ds.system_column) or "") if ds.system_column else ""
        pieces = make_pieces(Conversation(system, [Turn(row_text(row, ds), "")]), ds, tokenizer)
        texts.append("".join(text for text, _ in pieces[:-1]))
    if not texts:
        return []
    kept_side = tokenizer.truncation_side
    tokenizer.truncation_side = tok.truncation_side
    try:
        return tokenizer(texts, add_special_tokens=tokenizer.bos_token is None, truncation=True,
                         max_length=tok.max_length)["input_ids"]
    finally:
        tokenizer.truncation_side = kept_side


def cut_note(rows: list[dict[str, Any]], encoded: list[list[int]], exp) -> list[str]:
    """One line when max_length cut texts (H2O cuts silently)."""
    longest = exp.tokenizer.max_length
    cut = sum(1 for ids in encoded if len(ids) >= longest)
    if not cut:
        return []
    note = (f"tokenizer.max_length = {longest} may have cut {cut} of {len(rows)} texts "
            f"(truncation_side = {exp.tokenizer.truncation_side}).")
    return [note]


def make_split(exp, tokenizer, rows: HeadRows, examples) -> SplitData:
    """SplitData from a function turning (rows, which file) into TextExamples."""
    train = examples(rows.train, "dataset.train_file", exp.dataset.train_file)
    val = examples(rows.val, rows.val_setting, rows.val_file)
    extra = val if exp.training.train_on_validation else []
    return SplitData(train + extra, val, None, cut_note(rows.train + rows.val,
                                                       [e.input_ids for e in train + val], exp))


class HeadCollator:
    """Pads input ids as causal_lm's batches are padded (padding_quantile and padding_side;
    a row longer than the batch keeps its end) and stacks the targets as `labels`."""

    def __init__(self, pad_id: int, quantile: float = 1.0, side: str = "right",
                 target_dtype: torch.dtype = torch.float32):
        self.pad = PaddedCollator(pad_id, quantile, side)
        self.target_dtype = target_dtype

    def __call__(self, examples: list[TextExample]) -> dict[str, torch.Tensor]:
        pad = self.pad
        width = pad.target_length([len(e) for e in examples])
        ids = torch.full((len(examples), width), pad.pad_id, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, ex in enumerate(examples):
            n = min(len(ex), width)
            span = slice(0, n) if pad.side == "right" else slice(width - n, width)
            ids[row, span] = torch.tensor(ex.input_ids[len(ex) - n:])
            mask[row, span] = 1
        labels = torch.tensor([e.target for e in examples], dtype=self.target_dtype)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def collator_for(exp, tokenizer, target_dtype: torch.dtype) -> HeadCollator:
    tok = exp.tokenizer
    return HeadCollator(tokenizer.pad_token_id, tok.padding_quantile, tok.padding_side,
                        target_dtype)


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: batch[k] for k in ("input_ids", "attention_mask")}


def head_kwargs(num_labels: int, problem_type: str, names: list[str],
                pad_token_id: int | None) -> dict[str, Any]:
    """from_pretrained / AutoConfig arguments for the head: its size, transformers' problem
    type (which loss `labels=` gives), the label names (final/config.json's id2label) and the
    padding token, by which a causal LM finds each row's last real token."""
    return {"num_labels": num_labels, "problem_type": problem_type,
            "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)},
            "pad_token_id": pad_token_id}


@torch.no_grad()
def predict(model, examples: list[TextExample], accelerator, batch_size: int,
            collate: HeadCollator, progress=None) -> torch.Tensor:
    """The head's outputs (float32, on the CPU, in example order) for every example, on every
    rank: each rank runs every world-th example, as many batches on each (FSDP needs all ranks
    in every forward), then the outputs are gathered. progress(n) after each batch of n."""
    from accelerate.utils import gather_object

    world, rank = accelerator.num_processes, accelerator.process_index
    mine = list(range(rank, len(examples), world))
    per_rank = -(-len(examples) // world)
    padded = mine + [mine[0] if mine else 0] * (per_rank - len(mine))  # repeats are dropped
    rows: list[tuple[int, list[float]]] = []
    model.eval()
    for start in range(0, len(padded), batch_size):
        chunk = padded[start:start + batch_size]
        batch = collate([examples[i] for i in chunk])
        inputs = {k: v.to(accelerator.device) for k, v in model_inputs(batch).items()}
        with accelerator.autocast():
            logits = model(**inputs).logits.float().cpu()
        done = [(i, out) for n, (i, out) in enumerate(zip(chunk, logits.tolist()))
                if start + n < len(mine)]
        rows += done
        if progress is not None:
            progress(len(done))
    model.train()
    if world > 1:
        rows = gather_object(rows)
    rows.sort(key=lambda pair: pair[0])
    return torch.tensor([out for _, out in rows], dtype=torch.float32)


def prediction_examples(rows: list[dict[str, Any]], exp, tokenizer,
                        target: Any) -> list[TextExample]:
    """Test rows as examples with a stand-in target (the collator stacks one per row)."""
    return [TextExample(ids, target, "", "") for ids in encode_texts(rows, exp, tokenizer)]


def eval_batch_size(exp) -> int:
    return exp.prediction.batch_size or exp.training.batch_size


def write_head_config(exp, folder: Path, kwargs: dict[str, Any], vocab: int) -> None:
    """final/config.json with the head's settings where the adapter family wrote none (a LoRA
    final/ holds only the adapter): AutoConfig.from_pretrained(final) then gives the label
    names and the head size that AutoModelForSequenceClassification needs."""
    if (folder / "config.json").is_file():
        return
    from transformers import AutoConfig

    general = exp.general
    config = AutoConfig.from_pretrained(general.backbone, revision=general.revision,
                                        trust_remote_code=general.trust_remote_code, **kwargs)
    if getattr(config, "vocab_size", vocab) < vocab:
        config.vocab_size = vocab  # the tokenizer grew (add_prompt_answer_tokens)
    config.save_pretrained(folder)


class SequenceHeadTask(Task):
    """What classification and regression have in common as tasks: the model class, the new
    head peft trains and saves with the adapter, and final/ (the tokenizer, and for an adapter
    run the head's settings in config.json). `self.data` is the split `load_data` (or
    `predict_setup`) found, which `model_kwargs` reads."""

    auto_model = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"  # peft then trains and saves `score` / `classifier` too
    head_modules = ("score", "classifier")  # causal LMs' head / BERT-style encoders'
    head_is_new = True

    def __init__(self):
        self.data = None

    def write_final(self, tokenizer, exp, folder: Path) -> None:
        tokenizer.save_pretrained(folder)
        write_head_config(exp, folder, self.model_kwargs(exp, self.data), len(tokenizer))

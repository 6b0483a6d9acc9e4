"""Token classification (NER, part of speech, chunking: the same task with other tags): one tag
per word, learned on the sub-word tokens of an encoder or a causal LM
(`AutoModelForTokenClassification`: BertForTokenClassification, LlamaForTokenClassification...).

Rows hold words and one tag per word (runs/tag_rows.py reads and checks them, as the launch
preflight does). Words are tokenized with is_split_into_words, and a word's tag is learned on
its first sub-token (the others ignored), or on every sub-token with
dataset.label_all_subtokens. The label set is the data's tags, sorted; it goes into the model's
config as id2label/label2id, so final/config.json names the tags. The loss is the model's own
(cross-entropy over labelled tokens); the evaluation reads each word's tag at its first
sub-token and scores the words with seqeval or scikit-learn (tag_metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from tui_tune.runs import tag_rows
from tui_tune.train.collate import PaddedCollator
from tui_tune.train.data import SplitData, check_columns, read_rows, split_rows
from tui_tune.train.errors import UserError
from tui_tune.train.formatting import IGNORE_INDEX
from tui_tune.train.tag_metrics import entity_tags, tag_scores
from tui_tune.train.tasks.base import EvalResult, Task

TRAIN, VALIDATION = "dataset.train_file", "dataset.validation_file"


@dataclass
class TaggedExample:
    """One row as the model sees it: token ids with a label per token (IGNORE_INDEX where
    nothing is learned), and for each word the token its tag is read from (-1: the word has
    no token, cut by max_length)."""
    input_ids: list[int]
    labels: list[int]
    words: list[str]
    tags: list[int]
    word_token: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def scored(self) -> list[int]:
        """The words that have a token, which the evaluation scores."""
        return [i for i, token in enumerate(self.word_token) if token >= 0]


@dataclass
class TagData(SplitData):
    labels: list[str] = field(default_factory=list)  # the tag of each label id


class TokenClassification(Task):
    name = "token_classification"
    auto_model = "AutoModelForTokenClassification"
    peft_task_type = "TOKEN_CLS"
    head_modules = ("classifier", "score")  # BERT-style encoders; Llama, Qwen, Mistral...
    head_is_new = True

    def __init__(self):
        self.labels: list[str] = []  # the tag of each label id, once load_data has read them

    def load_data(self, exp, tokenizer, seed: int) -> TagData:
        data = load_examples(exp, tokenizer, seed)
        self.labels = data.labels
        return data

    def model_kwargs(self, exp, data) -> dict:
        return label_kwargs(data.labels if data is not None else self.labels)

    def train_collator(self, exp, tokenizer):
        return PaddedCollator(tokenizer.pad_token_id)

    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        return model(**model_inputs(batch), labels=batch["labels"]).loss

    def evaluate(self, model, tokenizer, examples: list[TaggedExample], accelerator,
                 exp) -> EvalResult:
        return evaluate(model, tokenizer, examples, accelerator, exp, self.labels)

    def predict_setup(self, exp, tokenizer, seed: int) -> TagData:
        """The tag set, from the training file as training found it (not tokenized)."""
        self.labels = training_rows(exp, seed)[2]
        return TagData([], [], labels=self.labels)

    def predict(self, model, tokenizer, rows, accelerator, exp, progress=None):
        """A tag per word, joined by spaces as a tags cell is read (`-` for a word that
        tokenizer.max_length cut off)."""
        from accelerate.utils import gather_object

        examples = word_examples(rows, exp.dataset, tokenizer, exp.tokenizer)
        model.eval()
        _, mine = predict(model, examples, accelerator, exp.training.batch_size,
                          tokenizer.pad_token_id, progress)
        if accelerator.num_processes > 1:
            mine = gather_object(mine)
        if not accelerator.is_main_process:
            return None
        by_index = dict(mine)
        return [{"prediction": " ".join(word_tags(examples[i], self.labels, by_index[i]))}
                for i in range(len(examples))]

    def write_final(self, tokenizer, exp, folder: Path) -> None:
        """The tokenizer, and the labelled config where the weights came without one (an
        adapter's final/): id2label is how a user reads the predictions."""
        tokenizer.save_pretrained(folder)
        if not (folder / "config.json").is_file():
            from transformers import AutoConfig

            general = exp.general
            AutoConfig.from_pretrained(
                general.backbone, trust_remote_code=general.trust_remote_code,
                revision=general.revision, **label_kwargs(self.labels)).save_pretrained(folder)


def label_kwargs(labels: list[str]) -> dict:
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {tag: i for i, tag in enumerate(labels)}}


def training_rows(exp, seed: int) -> tuple[list[dict], list[dict], list[str]]:
    """The training file read, checked and split, and the tag set of its rows."""
    ds = exp.dataset
    rows = read_rows(ds.train_file, TRAIN, ds)
    check_columns(rows, ds, TRAIN, ds.train_file, exp.general.problem_type)
    train_rows, val_rows = split_rows(rows, ds, seed)
    return train_rows, val_rows, tag_rows.tag_set(train_rows + val_rows, ds)


def load_examples(exp, tokenizer, seed: int) -> TagData:
    ds, kind = exp.dataset, exp.general.problem_type
    train_rows, val_rows, labels = training_rows(exp, seed)
    if ds.validation_strategy == "custom":
        val_rows = read_rows(ds.validation_file or "", VALIDATION, ds)
        check_columns(val_rows, ds, VALIDATION, ds.validation_file, kind)
        unknown = tag_rows.unknown_tag(val_rows, labels, ds)
        if unknown:
            raise UserError(unknown, VALIDATION, ds.validation_file)
    ids = {tag: i for i, tag in enumerate(labels)}
    train, val = (tokenize_rows(r, ids, ds, tokenizer, exp.tokenizer)
                  for r in (train_rows, val_rows))
    extra = val if exp.training.train_on_validation else []
    note = truncation_note(train, val, exp.tokenizer.max_length)
    return TagData(train + extra, val, warnings=[note] if note else [], labels=labels)


def encode_words(word_lists: list[list[str]], tokenizer, tok):
    """Words -> sub-word tokens (a fast tokenizer's word_ids say which word each came from),
    cut to tokenizer.max_length from the side truncation_side names."""
    side = tokenizer.truncation_side
    tokenizer.truncation_side = tok.truncation_side
    try:
        encoded = tokenizer(word_lists, is_split_into_words=True, truncation=True,
                            max_length=tok.max_length)
    finally:
        tokenizer.truncation_side = side
    if not encoded.encodings:
        raise UserError("token classification needs a fast tokenizer (one that says which "
                        "word each token came from); this backbone's tokenizer is not one.",
                        "general.backbone")
    return encoded


def tokenize_rows(rows: list[dict], ids: dict[str, int], ds, tokenizer,
                  tok) -> list[TaggedExample]:
    if not rows:
        return []
    pairs = [tag_rows.words_and_tags(row, ds) for row in rows]
    encoded = encode_words([words for words, _ in pairs], tokenizer, tok)
    examples = []
    for n, (words, tags) in enumerate(pairs):
        word_ids = encoded.word_ids(n)
        tag_ids = [ids[t] for t in tags]
        examples.append(TaggedExample(encoded["input_ids"][n],
                                      aligned_labels(word_ids, tag_ids, ds.label_all_subtokens),
                                      words, tag_ids, first_tokens(word_ids, len(words))))
    return examples


def aligned_labels(word_ids: list[int | None], tag_ids: list[int],
                   all_subtokens: bool) -> list[int]:
    """A label per token: the word's tag on its first sub-token, and on the others too when
    all_subtokens; IGNORE_INDEX on special tokens and on the other sub-tokens."""
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE_INDEX)
        elif word != previous or all_subtokens:
            labels.append(tag_ids[word])
        else:
            labels.append(IGNORE_INDEX)
        previous = word
    return labels


def first_tokens(word_ids: list[int | None], n_words: int) -> list[int]:
    """For each word, the position of its first token (-1 when it has none)."""
    first = [-1] * n_words
    for position, word in enumerate(word_ids):
        if word is not None and first[word] < 0:
            first[word] = position
    return first


def word_examples(rows: list[dict], ds, tokenizer, tok) -> list[TaggedExample]:
    """Test rows: their words alone (no tags, nothing labelled)."""
    if not rows:
        return []
    words = [tag_rows.cell_items(row[ds.words_column]) for row in rows]
    encoded = encode_words(words, tokenizer, tok)
    return [TaggedExample(encoded["input_ids"][n], [IGNORE_INDEX] * len(encoded["input_ids"][n]),
                          row_words, [], first_tokens(encoded.word_ids(n), len(row_words)))
            for n, row_words in enumerate(words)]


def truncation_note(train: list[TaggedExample], val: list[TaggedExample],
                    max_length: int) -> str | None:
    """How many words max_length left without a token (never learned, not scored)."""
    cut = [(len(e.words) - len(e.scored)) for e in train + val]
    words = sum(cut)
    if not words:
        return None
    return (f"tokenizer.max_length = {max_length} cut {words} of "
            f"{sum(len(e.words) for e in train + val)} words in {sum(1 for c in cut if c)} "
            "rows: their tags are neither learned nor scored; raise max_length to keep them")


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}


@torch.no_grad()
def predict(model, examples: list[TaggedExample], accelerator, batch_size: int,
            pad_id: int, progress=None) -> tuple[torch.Tensor, list[tuple[int, list[int]]]]:
    """This rank's share (every world-th example): (loss sum and labelled token count, the
    predicted label id of each scored word, by example index); progress(n) per batch."""
    collate = PaddedCollator(pad_id)
    rank, world = accelerator.process_index, accelerator.num_processes
    indices = list(range(rank, len(examples), world))
    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    predicted = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        batch = {k: v.to(accelerator.device) for k, v in
                 collate([examples[i] for i in chunk]).items()}
        with accelerator.autocast():
            logits = model(**model_inputs(batch)).logits
        total[0] += F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(),
                                    ignore_index=IGNORE_INDEX, reduction="sum").double()
        total[1] += (batch["labels"] != IGNORE_INDEX).sum()
        best = logits.argmax(dim=-1).cpu()
        for row, i in enumerate(chunk):
            positions = [examples[i].word_token[w] for w in examples[i].scored]
            predicted.append((i, best[row, positions].tolist()))
        if progress is not None:
            progress(len(chunk))
    return total, predicted


def evaluate(model, tokenizer, examples: list[TaggedExample], accelerator, exp,
             labels: list[str]) -> EvalResult:
    """Every rank predicts its share; the loss is summed and the predictions gathered, so
    every rank scores all words the same way. Samples on rank 0."""
    from accelerate.utils import gather_object

    model.eval()
    total, mine = predict(model, examples, accelerator, exp.training.batch_size,
                          tokenizer.pad_token_id)
    model.train()
    if accelerator.num_processes > 1:
        total = accelerator.reduce(total, reduction="sum")
        mine = gather_object(mine)
    by_index = dict(mine)
    truth = [[labels[examples[i].tags[w]] for w in examples[i].scored]
             for i in range(len(examples))]
    predicted = [[labels[p] for p in by_index[i]] for i in range(len(examples))]
    values = tag_scores(truth, predicted, entity_tags(labels))
    samples = []
    if accelerator.is_main_process:
        samples = [sample(examples[i], labels, by_index[i])
                   for i in range(min(exp.prediction.num_samples, len(examples)))]
    metric = exp.prediction.metric
    return EvalResult(float(total[0] / total[1].clamp(min=1)), metric, values[metric], values,
                      samples)


def word_tags(example: TaggedExample, labels: list[str], predicted_ids: list[int]) -> list[str]:
    """The predicted tag of each word; '-' for a word without a prediction (cut)."""
    predicted = ["-"] * len(example.words)
    for w, p in zip(example.scored, predicted_ids):
        predicted[w] = labels[p]
    return predicted


def sample(example: TaggedExample, labels: list[str], predicted_ids: list[int]) -> dict:
    """The monitor's sample fields (the words, then word/tag pairs predicted and true) and the
    same as lists; a word without a prediction (cut) shows '-'."""
    predicted = word_tags(example, labels, predicted_ids)
    truth = [labels[t] for t in example.tags]
    return {"prompt": " ".join(example.words),
            "generation": " ".join(f"{w}/{t}" for w, t in zip(example.words, predicted)),
            "reference": " ".join(f"{w}/{t}" for w, t in zip(example.words, truth)),
            "words": example.words, "predicted": predicted, "truth": truth}

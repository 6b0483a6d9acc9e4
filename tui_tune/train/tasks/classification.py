"""Classification: a text -> one class (multiclass, cross-entropy), one 0/1 label (binary,
num_classes = 1: one output and binary cross-entropy, as in H2O) or several 0/1 labels
(multilabel: one column each, binary cross-entropy), with optional class weights.

Labels are class ids (0 to num_classes-1) or label texts, which become ids in sorted order;
the names go to final/config.json as id2label/label2id. The metrics are scikit-learn's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tui_tune.runs.labels import as_class_id, label_setting
from tui_tune.train.data import SplitData
from tui_tune.train.errors import UserError
from tui_tune.train.tasks.base import EvalResult
from tui_tune.train.tasks.sequence_head import (
    SequenceHeadTask,
    TextExample,
    collator_for,
    encode_texts,
    eval_batch_size,
    head_kwargs,
    make_split,
    model_inputs,
    predict,
    prediction_examples,
    read_split_rows,
    row_text,
)


@dataclass
class LabelSet:
    """What the head predicts: kind multiclass, binary or multilabel; the class (or label)
    names in id order; for label texts, text -> id."""
    kind: str
    names: list[str]
    text_ids: dict[str, int] | None = None

    @property
    def outputs(self) -> int:
        return 1 if self.kind == "binary" else len(self.names)

    @property
    def problem_type(self) -> str:
        """transformers' name for it, which picks the loss `labels=` computes."""
        return "single_label_classification" if self.kind == "multiclass" \
            else "multi_label_classification"


@dataclass
class ClassData(SplitData):
    labels: LabelSet = field(default_factory=lambda: LabelSet("multiclass", []))
    pad_token_id: int | None = None


def label_set(rows: list[dict[str, Any]], ds) -> LabelSet:
    """From the whole training file (checked by runs/labels.LabelCheck): ids 0..n-1 with n
    from num_classes or else the largest id + 1; label texts in sorted order."""
    _, columns = label_setting(ds)
    if len(columns) > 1:
        return LabelSet("multilabel", columns)
    values = [row[columns[0]] for row in rows]
    kind = "binary" if ds.num_classes == 1 else "multiclass"
    ids = [as_class_id(v) for v in values]
    if all(i is not None for i in ids):
        count = 2 if kind == "binary" else ds.num_classes or max(ids) + 1
        return LabelSet(kind, [str(i) for i in range(max(count, 2))])
    texts = sorted({str(v) for v in values})
    count = 2 if kind == "binary" else max(ds.num_classes, len(texts), 2)
    names = texts + [str(i) for i in range(len(texts), count)]
    return LabelSet(kind, names, {text: i for i, text in enumerate(texts)})


def row_target(row: dict[str, Any], number: int, labels: LabelSet, ds, setting: str,
               path: str) -> int | list[float]:
    """A class id (multiclass) or 0/1 flags (binary, multilabel)."""
    label_of, columns = label_setting(ds)
    if labels.kind == "multilabel":
        return [float(as_class_id(row[c])) for c in columns]
    value = row[columns[0]]
    class_id = labels.text_ids.get(str(value)) if labels.text_ids is not None \
        else as_class_id(value)
    if class_id is None or class_id >= len(labels.names):
        raise UserError(f"row {number}, column '{columns[0]}' holds {value!r}, a label the "
                        f"training file does not have ({', '.join(labels.names[:12])}).",
                        label_of if setting == "dataset.train_file" else setting, path)
    return [float(class_id)] if labels.kind == "binary" else class_id


def shown_truth(target: int | list[float], labels: LabelSet) -> str:
    if labels.kind == "multiclass":
        return labels.names[target]
    if labels.kind == "binary":
        return labels.names[int(target[0])]
    return ", ".join(n for n, flag in zip(labels.names, target) if flag) or "(none)"


def class_loss(logits: torch.Tensor, labels: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """The mean loss from the head's outputs: cross-entropy for class ids (long labels), binary
    cross-entropy for 0/1 flags (float labels; the weights weigh each label's positive
    cases). Unweighted it is what transformers computes from `labels=`."""
    if labels.dtype == torch.long:
        return F.cross_entropy(logits.float(), labels, weight=weights)
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weights)


def class_weights(exp, device) -> torch.Tensor | None:
    weights = exp.training.class_weights
    return torch.tensor(weights, dtype=torch.float32, device=device) if weights else None


def probabilities(logits: torch.Tensor, kind: str) -> np.ndarray:
    """float64 probabilities; softmax rows renormalised to sum to 1 as sklearn checks."""
    if kind == "multiclass":
        probs = torch.softmax(logits.double(), dim=-1).numpy()
        return probs / probs.sum(axis=1, keepdims=True)
    return torch.sigmoid(logits.double()).numpy()


def _or_nan(metric, *args, **kwargs) -> float:
    """sklearn refuses some metrics on some data (AUC with one class present): NaN then."""
    try:
        return float(metric(*args, **kwargs))
    except ValueError:
        return math.nan


def class_metrics(probs: np.ndarray, truth: np.ndarray, labels: LabelSet) -> dict[str, Any]:
    """accuracy, auc, logloss, f1 (macro) and, for one label column, the confusion matrix."""
    from sklearn import metrics as skm

    if labels.kind == "multilabel":
        flags, predicted = truth.astype(int), (probs > 0.5).astype(int)
        return {
            "accuracy": float(skm.accuracy_score(flags, predicted)),  # every label right
            "auc": _or_nan(skm.roc_auc_score, flags, probs, average="macro"),
            "logloss": float(np.mean([skm.log_loss(flags[:, j], probs[:, j], labels=[0, 1])
                                      for j in range(flags.shape[1])])),
            "f1": float(skm.f1_score(flags, predicted, average="macro", zero_division=0))}
    classes = list(range(len(labels.names)))
    if labels.kind == "binary":
        truth_ids, positive = truth[:, 0].astype(int), probs[:, 0]
        predicted, scores, loss_input = (positive > 0.5).astype(int), positive, positive
    else:
        truth_ids, predicted = truth.astype(int), probs.argmax(axis=1)
        scores, loss_input = probs, probs
    auc_args = {} if labels.kind == "binary" else {"multi_class": "ovr", "average": "macro",
                                                    "labels": classes}
    return {
        "accuracy": float(skm.accuracy_score(truth_ids, predicted)),
        "auc": _or_nan(skm.roc_auc_score, truth_ids, scores, **auc_args),
        "logloss": float(skm.log_loss(truth_ids, loss_input, labels=classes)),
        "f1": float(skm.f1_score(truth_ids, predicted, average="macro", zero_division=0)),
        "confusion": skm.confusion_matrix(truth_ids, predicted, labels=classes).tolist(),
        "labels": list(labels.names)}


def sample_record(example: TextExample, probs: np.ndarray, labels: LabelSet) -> dict[str, Any]:
    """A sample event: the monitor's fields (prompt, generation, reference) with the
    predicted label(s) and their probability, and the same structured."""
    if labels.kind == "multilabel":
        chosen = [(n, float(p)) for n, p in zip(labels.names, probs) if p > 0.5]
        generation = ", ".join(f"{n} ({p:.2f})" for n, p in chosen) or "(none)"
        predicted: Any = [n for n, _ in chosen]
        truth: Any = [n for n, flag in zip(labels.names, example.target) if flag]
        by_name = dict(zip(labels.names, probs.tolist()))
    else:
        by_name = dict(zip(labels.names, probs.tolist())) if labels.kind == "multiclass" \
            else {labels.names[0]: 1.0 - float(probs[0]), labels.names[1]: float(probs[0])}
        predicted = max(by_name, key=by_name.get)
        generation, truth = f"{predicted} ({by_name[predicted]:.2f})", example.truth
    return {"prompt": example.text, "generation": generation, "reference": example.truth,
            "predicted": predicted, "truth": truth,
            "probabilities": {n: round(p, 4) for n, p in by_name.items()}}


def prediction_columns(probs: np.ndarray, labels: LabelSet) -> dict[str, Any]:
    """A test row's predicted label and a probability per class; several label columns: a 0/1
    prediction and a probability per column."""
    if labels.kind == "multilabel":
        return {**{f"prediction_{n}": int(p > 0.5) for n, p in zip(labels.names, probs)},
                **{f"probability_{n}": float(p) for n, p in zip(labels.names, probs)}}
    by_name = dict(zip(labels.names, probs.tolist())) if labels.kind == "multiclass" \
        else {labels.names[0]: 1.0 - float(probs[0]), labels.names[1]: float(probs[0])}
    return {"prediction": max(by_name, key=by_name.get),
            **{f"probability_{n}": p for n, p in by_name.items()}}


class Classification(SequenceHeadTask):
    name = "classification"
    data: ClassData | None

    def load_data(self, exp, tokenizer, seed: int) -> ClassData:
        rows, ds = read_split_rows(exp, seed), exp.dataset
        labels = label_set(rows.all_train, ds)

        def examples(part, setting, path) -> list[TextExample]:
            targets = [row_target(r, n, labels, ds, setting, path) for n, r in
                       enumerate(part, 1)]
            return [TextExample(ids, target, row_text(r, ds), shown_truth(target, labels))
                    for ids, target, r in zip(encode_texts(part, exp, tokenizer), targets, part)]

        split = make_split(exp, tokenizer, rows, examples)
        self.data = ClassData(split.train, split.val, None, split.warnings, labels,
                              tokenizer.pad_token_id)
        return self.data

    def model_kwargs(self, exp, data) -> dict[str, Any]:
        """Binary: the one output is the positive class's logit, and id2label names it (a
        transformers config has as many labels as id2label entries)."""
        labels = data.labels
        names = labels.names[1:] if labels.kind == "binary" else labels.names
        return head_kwargs(labels.outputs, labels.problem_type, names, data.pad_token_id)

    def train_collator(self, exp, tokenizer):
        kind = self.data.labels.kind if self.data else "multiclass"
        return collator_for(exp, tokenizer, torch.long if kind == "multiclass" else torch.float32)

    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        """Unweighted: the model's own loss from `labels=` (transformers' exactly)."""
        if not exp.training.class_weights:
            return model(**model_inputs(batch), labels=batch["labels"]).loss
        logits = model(**model_inputs(batch)).logits
        return class_loss(logits, batch["labels"], class_weights(exp, logits.device))

    def evaluate(self, model, tokenizer, examples: list[TextExample], accelerator,
                 exp) -> EvalResult:
        labels = self.data.labels
        collate = self.train_collator(exp, tokenizer)
        logits = predict(model, examples, accelerator, eval_batch_size(exp), collate)
        truth = torch.tensor([e.target for e in examples], dtype=collate.target_dtype)
        val_loss = float(class_loss(logits, truth, class_weights(exp, "cpu")))
        probs = probabilities(logits, labels.kind)
        values = class_metrics(probs, truth.numpy(), labels)
        samples = [sample_record(e, p, labels) for e, p in
                   zip(examples[:exp.prediction.num_samples], probs)] \
            if accelerator.is_main_process else []
        metric = exp.prediction.metric
        return EvalResult(val_loss, metric, values[metric], values, samples)

    def predict_setup(self, exp, tokenizer, seed: int) -> ClassData:
        """The label set, from the training file as training found it (not tokenized)."""
        labels = label_set(read_split_rows(exp, seed).all_train, exp.dataset)
        self.data = ClassData([], [], labels=labels, pad_token_id=tokenizer.pad_token_id)
        return self.data

    def predict(self, model, tokenizer, rows, accelerator, exp, progress=None):
        labels = self.data.labels
        stand_in = 0 if labels.kind == "multiclass" else [0.0] * labels.outputs
        logits = predict(model, prediction_examples(rows, exp, tokenizer, stand_in), accelerator,
                         eval_batch_size(exp), self.train_collator(exp, tokenizer), progress)
        if not accelerator.is_main_process:
            return None
        return [prediction_columns(p, labels) for p in probabilities(logits, labels.kind)]

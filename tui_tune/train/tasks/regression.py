"""Regression: a text -> one or more numbers (one per label column), with mean squared error,
mean absolute error or Huber loss (training.regression_loss). Metrics: scikit-learn's MSE,
MAE and R² (averaged over the columns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tui_tune.runs.labels import as_number, label_setting
from tui_tune.train.data import SplitData
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
class TargetData(SplitData):
    columns: list[str] = field(default_factory=list)
    pad_token_id: int | None = None


def regression_loss(outputs: torch.Tensor, targets: torch.Tensor, mode: str) -> torch.Tensor:
    """The mean loss over rows and target columns; mse is what transformers computes from
    `labels=`. Huber is quadratic within 1 of the target, linear beyond."""
    outputs, targets = outputs.float().view_as(targets), targets.float()
    if mode == "mae":
        return F.l1_loss(outputs, targets)
    if mode == "huber":
        return F.huber_loss(outputs, targets, delta=1.0)
    return F.mse_loss(outputs, targets)


def regression_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    return {"mse": float(skm.mean_squared_error(truth, predicted)),
            "mae": float(skm.mean_absolute_error(truth, predicted)),
            "r2": float(skm.r2_score(truth, predicted))}


def shown_values(values, columns: list[str]) -> str:
    numbers = [f"{v:.4g}" for v in values]
    if len(columns) == 1:
        return numbers[0]
    return ", ".join(f"{c} = {n}" for c, n in zip(columns, numbers))


class Regression(SequenceHeadTask):
    name = "regression"
    data: TargetData | None

    def load_data(self, exp, tokenizer, seed: int) -> TargetData:
        rows, ds = read_split_rows(exp, seed), exp.dataset
        _, columns = label_setting(ds)

        def examples(part, setting, path) -> list[TextExample]:
            out = []
            for ids, row in zip(encode_texts(part, exp, tokenizer), part):
                target = [as_number(row[c]) for c in columns]
                out.append(TextExample(ids, target, row_text(row, ds),
                                       shown_values(target, columns)))
            return out

        split = make_split(exp, tokenizer, rows, examples)
        self.data = TargetData(split.train, split.val, None, split.warnings, columns,
                               tokenizer.pad_token_id)
        return self.data

    def model_kwargs(self, exp, data) -> dict[str, Any]:
        return head_kwargs(len(data.columns), "regression", data.columns, data.pad_token_id)

    def train_collator(self, exp, tokenizer):
        return collator_for(exp, tokenizer, torch.float32)

    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        """mse: the model's own loss from `labels=` (transformers' exactly)."""
        mode = exp.training.regression_loss
        if mode == "mse":
            return model(**model_inputs(batch), labels=batch["labels"]).loss
        return regression_loss(model(**model_inputs(batch)).logits, batch["labels"], mode)

    def evaluate(self, model, tokenizer, examples: list[TextExample], accelerator,
                 exp) -> EvalResult:
        columns = self.data.columns
        collate = self.train_collator(exp, tokenizer)
        outputs = predict(model, examples, accelerator, eval_batch_size(exp), collate)
        truth = torch.tensor([e.target for e in examples], dtype=torch.float32)
        val_loss = float(regression_loss(outputs, truth, exp.training.regression_loss))
        values = regression_metrics(outputs.numpy(), truth.numpy())
        samples = [{"prompt": e.text, "generation": shown_values(out, columns),
                    "reference": e.truth, "predicted": [round(v, 6) for v in out],
                    "truth": e.target}
                   for e, out in zip(examples[:exp.prediction.num_samples], outputs.tolist())] \
            if accelerator.is_main_process else []
        metric = exp.prediction.metric
        return EvalResult(val_loss, metric, values[metric], values, samples)

    def predict_setup(self, exp, tokenizer, seed: int) -> TargetData:
        """The target columns are the settings' (no file needs reading)."""
        self.data = TargetData([], [], columns=label_setting(exp.dataset)[1],
                               pad_token_id=tokenizer.pad_token_id)
        return self.data

    def predict(self, model, tokenizer, rows, accelerator, exp, progress=None):
        """The predicted value as `prediction`; several target columns: prediction_<column>."""
        columns = self.data.columns
        examples = prediction_examples(rows, exp, tokenizer, [0.0] * len(columns))
        outputs = predict(model, examples, accelerator, eval_batch_size(exp),
                          self.train_collator(exp, tokenizer), progress)
        if not accelerator.is_main_process:
            return None
        names = ["prediction"] if len(columns) == 1 else [f"prediction_{c}" for c in columns]
        return [dict(zip(names, out)) for out in outputs.tolist()]

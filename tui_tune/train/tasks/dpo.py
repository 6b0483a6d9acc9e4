"""Preference tuning (DPO and H2O's variants): each row is a prompt with a chosen and a rejected
answer; the model learns to raise the chosen one's likelihood over the rejected one's, measured
against a reference model (logprobs.Reference: the adapter switched off, or a frozen copy).

The prompt is formatted exactly as causal_lm formats it (system, chained turns, text markers or
the chat template: formatting.py); only the final answer's tokens count. The losses follow TRL
(1.16: sigmoid, ipo, hinge) and TRL's earlier kto_pair, which H2O LLM Studio's DPOLoss, IPOLoss,
HingeLoss and KTOPairLoss compute too; label smoothing is conservative DPO (sigmoid only).
final/ is an ordinary causal LM (or its adapter): prediction and export are causal_lm's.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tui_tune.rundir import RunDir
from tui_tune.train.collate import PaddedCollator
from tui_tune.train.data import SplitData, read_split_rows
from tui_tune.train.formatting import (
    IGNORE_INDEX,
    Conversation,
    Example,
    Turn,
    build_conversations,
    conversation_ends,
    tokenize_conversations,
    truncation_note,
)
from tui_tune.train.generation import generate_on_ranks
from tui_tune.train.logprobs import Reference, sequence_logps
from tui_tune.train.tasks.base import EvalResult
from tui_tune.train.tasks.causal_lm import CausalLM

# the step/eval statistics, in this order: sums over pairs (the last is the number of pairs)
STATS = ("rewards_chosen", "rewards_rejected", "reward_margin", "preference_accuracy",
         "logps_chosen", "logps_rejected")


@dataclass
class Pair:
    """One row: the same prompt with each answer; `index` is its row in the reference cache
    (training pairs first, then validation pairs)."""
    chosen: Example
    rejected: Example
    index: int

    def __len__(self) -> int:
        return len(self.chosen) + len(self.rejected)


@dataclass
class PairLosses:
    loss: torch.Tensor  # the batch mean, with its graph
    chosen_rewards: torch.Tensor  # beta * (log p - reference log p), per pair, detached
    rejected_rewards: torch.Tensor
    chosen_logps: torch.Tensor
    rejected_logps: torch.Tensor

    def sums(self) -> torch.Tensor:
        """STATS summed over the pairs, then the number of pairs."""
        c, r = self.chosen_rewards, self.rejected_rewards
        return torch.stack([c.sum(), r.sum(), (c - r).sum(), (c > r).float().sum(),
                            self.chosen_logps.detach().sum(),
                            self.rejected_logps.detach().sum(),
                            torch.tensor(float(c.numel()), device=c.device)]).double()


def preference_loss(logps: torch.Tensor, ref_logps: torch.Tensor, counts: torch.Tensor,
                    kind: str, beta: float, label_smoothing: float = 0.0) -> PairLosses:
    """The loss of a batch laid out [chosen..., rejected...] (sums of answer-token log-probs
    under the model and the reference, and the answer lengths), as TRL computes it."""
    chosen, rejected = logps.float().chunk(2)
    ref_chosen, ref_rejected = ref_logps.float().chunk(2)
    chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
    delta = chosen_ratio - rejected_ratio
    if kind == "sigmoid":
        losses = (-F.logsigmoid(beta * delta) * (1 - label_smoothing)
                  - F.logsigmoid(-beta * delta) * label_smoothing)
    elif kind == "hinge":
        losses = torch.relu(1 - beta * delta)
    elif kind == "ipo":  # per-token averages: TRL's (and the IPO authors') normalisation
        chosen_count, rejected_count = counts.chunk(2)
        averaged = (chosen_ratio / chosen_count.clamp(min=1)
                    - rejected_ratio / rejected_count.clamp(min=1))
        losses = (averaged - 1 / (2 * beta)) ** 2
    elif kind == "kto_pair":  # each half's KL estimate comes from the other half (HALOs eq. 7)
        chosen_kl = chosen_ratio.mean().clamp(min=0)
        rejected_kl = rejected_ratio.mean().clamp(min=0)
        losses = torch.cat((1 - torch.sigmoid(beta * (chosen_ratio - rejected_kl)),
                            1 - torch.sigmoid(beta * (chosen_kl - rejected_ratio))))
    else:
        raise ValueError(f"unknown dpo loss {kind!r}")
    return PairLosses(losses.mean(), beta * chosen_ratio.detach(), beta * rejected_ratio.detach(),
                      chosen, rejected)


def answer_only(example: Example) -> Example:
    """The final answer's tokens are the labels (the prompt and earlier turns are context)."""
    cut = example.prompt_length
    example.labels = [IGNORE_INDEX] * cut + example.input_ids[cut:]
    return example


def make_pairs(rows, lookup, ds, tokenizer, max_length: int, side: str,
               start: int) -> list[Pair]:
    if not rows:
        return []
    pool = lookup or rows
    chosen = build_conversations(rows, ds, lookup=pool)
    ends = conversation_ends(rows, ds, pool)
    rejected = [Conversation(c.system, c.turns[:-1] + [
        Turn(c.turns[-1].prompt, str(row[ds.rejected_answer_column]))])
        for c, row in zip(chosen, ends)]
    good = tokenize_conversations(chosen, ds, tokenizer, max_length, side)
    bad = tokenize_conversations(rejected, ds, tokenizer, max_length, side)
    return [Pair(answer_only(g), answer_only(b), start + n)
            for n, (g, b) in enumerate(zip(good, bad))]


def load_pairs(exp, tokenizer, seed: int) -> SplitData:
    """As causal_lm reads its rows (split, chains looked up in the whole file); parent
    augmentation is not drawn: a pair's reference log-probs are fixed."""
    ds, rows = exp.dataset, read_split_rows(exp, seed)
    max_length, side = exp.tokenizer.max_length, exp.tokenizer.truncation_side
    train, val = rows.examples(ds, lambda part, lookup, start: make_pairs(
        part, lookup, ds, tokenizer, max_length, side, start))
    note = truncation_note([p.chosen for p in train] + [p.rejected for p in train],
                           [p.chosen for p in val] + [p.rejected for p in val], max_length, side)
    extra = val if exp.training.train_on_validation else []
    return SplitData(train + extra, val, None, [note] if note else [])


class PairCollator:
    """[chosen..., rejected...] padded together, and each pair's cache row."""

    def __init__(self, pad_id: int, quantile: float = 1.0, side: str = "right"):
        self.inner = PaddedCollator(pad_id, quantile, side)

    def __call__(self, pairs: list[Pair]) -> dict[str, torch.Tensor]:
        batch = self.inner([p.chosen for p in pairs] + [p.rejected for p in pairs])
        batch["pair_index"] = torch.tensor([p.index for p in pairs], dtype=torch.long)
        return batch


def fingerprint(pairs: list[Pair], exp) -> str:
    """What the cached reference log-probs depend on: every pair's tokens and the reference."""
    digest = hashlib.sha256(repr((exp.general.backbone, exp.general.pretrained_weights,
                                  exp.architecture.backbone_dtype)).encode())
    for pair in pairs:
        digest.update(repr((pair.index, pair.chosen.input_ids, pair.chosen.prompt_length,
                            pair.rejected.input_ids, pair.rejected.prompt_length)).encode())
    return digest.hexdigest()


class DPO(CausalLM):
    name = "dpo"

    def __init__(self):
        self.reference: Reference | None = None
        self.cache: torch.Tensor | None = None  # (pairs, 2): reference log-probs when kept
        self.window: torch.Tensor | None = None  # PairLosses.sums since the last step event

    def load_data(self, exp, tokenizer, seed: int) -> SplitData:
        return load_pairs(exp, tokenizer, seed)

    def train_collator(self, exp, tokenizer):
        tok = exp.tokenizer
        return PairCollator(tokenizer.pad_token_id, tok.padding_quantile, tok.padding_side)

    def before_training(self, session) -> None:
        """The reference; with training.precompute_reference, its log-probs of every pair,
        read from the run folder when they are there for these pairs (a resume)."""
        acc, exp = session.accelerator, session.exp
        reference = Reference.build(session.model, exp, session.tokenizer, acc.device,
                                    session.data)
        if not exp.training.precompute_reference:
            self.reference = reference
            return
        pairs = {p.index: p for p in session.data.train + session.data.val}
        ordered = [pairs[i] for i in sorted(pairs)]
        path, expected = RunDir(session.run_dir).reference_logps, fingerprint(ordered, exp)
        saved = torch.load(path, map_location="cpu") if path.is_file() else None
        if saved is not None and saved.get("fingerprint") == expected:
            self.cache = saved["logps"].to(acc.device)
            session.reporter.log(f"reference log-probs of {len(ordered)} pairs read from "
                                 f"{path.name}")
            return
        self.cache = reference_table(session.model, reference, ordered, acc,
                                     exp.training.batch_size, session.tokenizer.pad_token_id)
        if acc.is_main_process:
            partial = path.with_name(path.name + ".partial")
            torch.save({"fingerprint": expected, "logps": self.cache.cpu()}, partial)
            os.replace(partial, path)
            session.reporter.log(f"reference log-probs of {len(ordered)} pairs computed and "
                                 f"kept in {path.name}")
        acc.wait_for_everyone()

    def reference_logps(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cache is not None:
            rows = self.cache[batch["pair_index"]]
            return torch.cat([rows[:, 0], rows[:, 1]])
        if self.reference is None:  # used without before_training (tests, benchmarks)
            raise RuntimeError("DPO.before_training builds the reference first")
        return self.reference.logps(model, batch)[0]

    def pair_losses(self, model, batch: dict[str, torch.Tensor], exp) -> PairLosses:
        logps, counts = sequence_logps(model, batch)
        t = exp.training
        return preference_loss(logps, self.reference_logps(model, batch), counts, t.dpo_loss,
                               t.beta, t.label_smoothing)

    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        out = self.pair_losses(model, batch, exp)
        sums = out.sums()
        self.window = sums if self.window is None else self.window + sums
        return out.loss

    def step_values(self, accelerator) -> dict[str, float]:
        """STATS since the last step event, means over the pairs of every rank."""
        sums = self.window
        if sums is None:
            sums = torch.zeros(len(STATS) + 1, dtype=torch.float64, device=accelerator.device)
        self.window = None
        if accelerator.num_processes > 1:
            sums = accelerator.reduce(sums, reduction="sum")
        return {f"train_{k}": v for k, v in means(sums).items()}

    def evaluate(self, model, tokenizer, pairs: list[Pair], accelerator, exp) -> EvalResult:
        sums, loss = validation_sums(self, model, pairs, accelerator, exp,
                                     tokenizer.pad_token_id)
        values = means(sums)
        samples = []
        shown = pairs[:exp.prediction.num_samples]
        made = generate_on_ranks(model, tokenizer, [p.chosen for p in shown], exp,
                                 accelerator) if shown else []
        if accelerator.is_main_process and made is not None:
            samples = [{"prompt": g.prompt, "generation": g.answer,
                        "reference": p.chosen.answer_text, "rejected": p.rejected.answer_text}
                       for p, g in zip(shown, made)]
        metric = exp.prediction.metric
        return EvalResult(loss, metric, values[metric], values, samples)


def means(sums: torch.Tensor) -> dict[str, float]:
    count = max(float(sums[-1]), 1.0)
    return {name: float(sums[k]) / count for k, name in enumerate(STATS)}


@torch.no_grad()
def validation_sums(task: DPO, model, pairs: list[Pair], accelerator, exp,
                    pad_id: int) -> tuple[torch.Tensor, float]:
    """STATS sums over every rank's share of the pairs (each rank every world-th), and the
    mean loss over batches of training.batch_size pairs."""
    collate = PairCollator(pad_id)
    mine = pairs[accelerator.process_index::accelerator.num_processes]
    size = exp.training.batch_size
    sums = torch.zeros(len(STATS) + 1, dtype=torch.float64, device=accelerator.device)
    loss = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    model.eval()
    for start in range(0, len(mine), size):
        batch = {k: v.to(accelerator.device) for k, v in
                 collate(mine[start:start + size]).items()}
        with accelerator.autocast():
            out = task.pair_losses(model, batch, exp)
        sums += out.sums()
        loss += torch.stack([out.loss.double() * len(batch["pair_index"]),
                             torch.tensor(float(len(batch["pair_index"])),
                                          device=loss.device, dtype=torch.float64)])
    model.train()
    if accelerator.num_processes > 1:
        sums = accelerator.reduce(sums, reduction="sum")
        loss = accelerator.reduce(loss, reduction="sum")
    return sums, float(loss[0] / loss[1].clamp(min=1))


@torch.no_grad()
def reference_table(model, reference: Reference, pairs: list[Pair], accelerator,
                    batch_size: int, pad_id: int) -> torch.Tensor:
    """(pairs, 2): the reference log-probs of each pair's chosen and rejected answer, by pair
    index; each rank computes every world-th pair and all ranks get the whole table."""
    collate = PairCollator(pad_id)
    mine = pairs[accelerator.process_index::accelerator.num_processes]
    found: list[tuple[int, float, float]] = []
    for start in range(0, len(mine), batch_size):
        batch = {k: v.to(accelerator.device) for k, v in
                 collate(mine[start:start + batch_size]).items()}
        with accelerator.autocast():
            chosen, rejected = reference.logps(model, batch)[0].float().chunk(2)
        found += zip(batch["pair_index"].tolist(), chosen.tolist(), rejected.tolist())
    if accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        found = gather_object(found)
    table = torch.zeros(max(p.index for p in pairs) + 1, 2, device=accelerator.device)
    for index, chosen, rejected in found:
        table[index, 0], table[index, 1] = chosen, rejected
    return table

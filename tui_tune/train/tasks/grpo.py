"""GRPO with verifiable rewards: for each prompt the current policy samples a group of
training.num_generations completions, reward functions score them (train/rewards.py), each
completion's advantage is its reward against its group's (mean, std), and a clipped
policy-gradient loss with a KL penalty to the reference (logprobs.Reference) pushes the
better ones up.

The loss is TRL 1.16 GRPOTrainer's with loss_type "grpo" (the paper's: each completion's
token mean, then the mean over completions; the k3 KL estimate weighed by beta; epsilon clips
the ratio to the sampling policy on both sides). Sampling uses the global torch RNG, which each
checkpoint keeps per rank, so a resumed run draws the same completions. With num_iterations
k > 1 the loop hands each step's prompts k times (setup.plan_steps, loop.epoch_loader); the
first time samples them and keeps the log-probs of the sampling policy, the others reuse that
batch (kept in each checkpoint too: a run resumed between two passes reuses it). A group lives on one rank, so its advantages need no other rank.

Prompts are formatted as causal_lm formats them; final/ is an ordinary causal LM (or adapter).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from tui_tune.train.collate import real_tokens
from tui_tune.train.data import SplitData, read_split_rows
from tui_tune.train.formatting import Example, truncation_note
from tui_tune.train.generation import generate_all
from tui_tune.train.logprobs import Reference, _plain, completion_logps
from tui_tune.train.rewards import Rewards, build_rewards, same_answer
from tui_tune.train.tasks.base import EvalResult
from tui_tune.train.tasks.causal_lm import CausalLM, _examples

# the step statistics, in this order (sums; the last is the number of completions or groups)
STATS = ("reward", "reward_std", "kl", "clip_ratio", "completion_length", "zero_std_fraction")
# per built-in reward function: the step event's mean of it (user functions: in `reward`)
BUILTIN_FIELDS = {"exact_match": "train_reward_exact_match", "format": "train_reward_format",
                  "length": "train_reward_length"}
SHOWN = 4  # completions of a prompt shown in a sample


@dataclass
class PromptRow:
    """A training or validation prompt: its example (generation prompt ids) and its row."""
    example: Example
    row: dict
    index: int

    def __len__(self) -> int:
        return len(self.example.prompt_ids)


@dataclass
class Rollout:
    """A micro-batch's sampled completions and what the loss needs of them."""
    ids: torch.Tensor  # (prompts x generations, width + completion): prompt then completion
    mask: torch.Tensor  # attention mask of ids
    width: int  # the left-padded prompts' length
    completion_mask: torch.Tensor  # (rows, completion): up to and with the first end token
    advantages: torch.Tensor  # (rows,)
    old: torch.Tensor | None  # sampling policy's log-probs (num_iterations > 1)
    ref: torch.Tensor | None  # reference log-probs (beta > 0)
    stats: torch.Tensor  # rewards' sums and counts for the step event
    uses: int = 0


def prompt_rows(rows, lookup, ds, tokenizer, max_length, side, start) -> list[PromptRow]:
    examples = _examples(rows, lookup, ds, tokenizer, max_length, side)
    return [PromptRow(e, row, start + n) for n, (e, row) in enumerate(zip(examples, rows))]


def load_prompts(exp, tokenizer, seed: int) -> SplitData:
    ds, rows = exp.dataset, read_split_rows(exp, seed)
    max_length, side = exp.tokenizer.max_length, exp.tokenizer.truncation_side
    train, val = rows.examples(ds, lambda part, lookup, start: prompt_rows(
        part, lookup, ds, tokenizer, max_length, side, start))
    note = truncation_note([p.example for p in train], [p.example for p in val], max_length,
                           side)
    extra = val if exp.training.train_on_validation else []
    return SplitData(train + extra, val, None, [note] if note else [])


def left_padded(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids, mask


class PromptCollator:
    """Left-padded generation prompts and each one's index (its row and answer)."""

    def __init__(self, pad_id: int, fallback: list[int]):
        self.pad_id, self.fallback = pad_id, fallback

    def __call__(self, prompts: list[PromptRow]) -> dict[str, torch.Tensor]:
        ids, mask = left_padded([p.example.prompt_ids or self.fallback for p in prompts],
                                self.pad_id)
        return {"input_ids": ids, "attention_mask": mask,
                "prompt_index": torch.tensor([p.index for p in prompts], dtype=torch.long)}


def group_advantages(rewards: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, each group's std): reward minus its group's mean, over the group's std
    (unbiased) + 1e-4, as TRL's scale_rewards "group"."""
    grouped = rewards.view(-1, size)
    std = grouped.std(dim=1)
    advantages = (grouped - grouped.mean(dim=1, keepdim=True)) / (std.unsqueeze(1) + 1e-4)
    return advantages.reshape(-1), std


def completion_mask(completion: torch.Tensor, eos_id: int | None) -> torch.Tensor:
    """1 up to and with the first end token (everything when there is none), as TRL."""
    length = completion.size(1)
    if eos_id is None:
        return torch.ones_like(completion)
    is_eos = completion == eos_id
    first = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1),
                        torch.full_like(is_eos[:, 0], length, dtype=torch.long))
    positions = torch.arange(length, device=completion.device).expand_as(completion)
    return (positions <= first.unsqueeze(1)).long()


def grpo_loss(logps: torch.Tensor, old: torch.Tensor | None, ref: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, epsilon: float,
              beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, per-completion mean KL, per-completion clipped-token fraction): TRL 1.16's
    loss_type "grpo" (its defaults: token-level ratios, bias-corrected KL, two-sided clip). `old` None: the batch was sampled
    by these very weights (num_iterations 1), so the ratio is 1 with its gradient."""
    old = logps.detach() if old is None else old
    mask = mask.to(logps.dtype)
    ratio = torch.exp(logps - old)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    a = advantages.unsqueeze(1)
    per_token = -torch.min(ratio * a, clipped * a)
    lengths = mask.sum(-1).clamp(min=1.0)
    kl = torch.zeros_like(lengths)
    if beta != 0.0 and ref is not None:
        # k3 estimate, importance-weighted to the sampling policy (TRL's use_bias_correction_kl)
        per_token_kl = (torch.exp(ref - logps) - (ref - logps) - 1) * ratio
        per_token = per_token + beta * per_token_kl
        kl = (per_token_kl.detach() * mask).sum(-1) / lengths
    loss = ((per_token * mask).sum(-1) / lengths).mean()
    is_clipped = ((ratio < 1 - epsilon) & (a < 0)) | ((ratio > 1 + epsilon) & (a > 0))
    clip = (is_clipped.to(mask.dtype) * mask).sum(-1).detach() / lengths
    return loss, kl, clip


class GRPO(CausalLM):
    name = "grpo"

    def __init__(self):
        self.reference: Reference | None = None
        self.rewards: Rewards | None = None
        self.tokenizer = None
        self.rows: dict[int, PromptRow] = {}
        self.rollouts: dict[tuple[int, ...], Rollout] = {}
        self.window: torch.Tensor | None = None  # stats sums since the last step event

    def load_data(self, exp, tokenizer, seed: int) -> SplitData:
        data = load_prompts(exp, tokenizer, seed)
        self.setup(exp, tokenizer, data.train + data.val)
        return data

    def setup(self, exp, tokenizer, prompts: list[PromptRow]) -> None:
        """The tokenizer, the reward functions (a user's module imported now: its error
        comes before the model loads) and the prompts by index."""
        self.tokenizer = tokenizer
        self.rewards = build_rewards(
            exp, lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]))
        self.rows = {p.index: p for p in prompts}

    def train_collator(self, exp, tokenizer):
        fallback = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None
                    else tokenizer.eos_token_id]
        return PromptCollator(tokenizer.pad_token_id, fallback)

    def before_training(self, session) -> None:
        self.reference = Reference.build(session.model, session.exp, session.tokenizer,
                                         session.accelerator.device, session.data)

    # -- sampling and scoring ---------------------------------------------------------------

    @torch.no_grad()
    def generate_groups(self, model, batch: dict[str, torch.Tensor], exp) -> torch.Tensor:
        """num_generations sampled continuations of each prompt, grouped (eval mode: no
        dropout), as generate returns them: the prompts, then the completions."""
        t, tok = exp.training, self.tokenizer
        plain = _plain(model)
        was_training = plain.training
        plain.eval()
        try:
            out = plain.generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                do_sample=True, temperature=t.sampling_temperature, top_p=t.sampling_top_p,
                top_k=0, max_new_tokens=t.max_completion_length,
                num_return_sequences=t.num_generations, pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id, use_cache=True)
        finally:
            plain.train(was_training)
        if out.device.type == "cuda":
            torch.cuda.empty_cache()  # the generation cache must not crowd the training step
        return out

    @torch.no_grad()
    def sample(self, model, batch: dict[str, torch.Tensor], exp) -> Rollout:
        """A group of completions per prompt from the current weights (eval mode: no dropout),
        their rewards and advantages, and the log-probs the loss compares with."""
        t, tok = exp.training, self.tokenizer
        out = self.generate_groups(model, batch, exp)
        width = batch["input_ids"].size(1)
        completion = out[:, width:]
        done = completion_mask(completion, tok.eos_token_id)
        completion = completion.masked_fill(done == 0, tok.pad_token_id)
        ids = torch.cat([out[:, :width], completion], dim=1)
        mask = torch.cat([batch["attention_mask"].repeat_interleave(t.num_generations, 0),
                          done], dim=1)
        texts = tok.batch_decode(completion, skip_special_tokens=True)
        prompts = [self.rows[int(i)] for i in batch["prompt_index"]
                   for _ in range(t.num_generations)]
        rollout = self.scored(ids, mask, width, done, texts, prompts, exp)
        if t.num_iterations > 1:
            rollout.old = completion_logps(model, ids, mask, width, t.sampling_temperature)
        if t.beta != 0.0 and self.reference is not None:
            rollout.ref = self.reference.apply(model, completion_logps, ids, mask, width,
                                               t.sampling_temperature)
        return rollout

    def scored(self, ids, mask, width, done, texts: list[str], prompts: list[PromptRow],
               exp) -> Rollout:
        each, total = self.rewards.score([p.example.prompt_text for p in prompts], texts,
                                         [p.row for p in prompts])
        device = ids.device
        rewards = torch.tensor(total, dtype=torch.float32, device=device)
        advantages, std = group_advantages(rewards, exp.training.num_generations)
        builtin = [torch.tensor(values, dtype=torch.float64).sum() if name in BUILTIN_FIELDS
                   else torch.tensor(float("nan"), dtype=torch.float64)
                   for name, values in zip(self.rewards.names, each)]
        fields = torch.tensor([float(rewards.sum()), float(std.sum()), 0.0, 0.0,
                               float(done.sum()), float((std.abs() < 1e-6).sum()),
                               float(rewards.numel()), float(std.numel())],
                              dtype=torch.float64)
        named = torch.tensor([float(b) for b in builtin], dtype=torch.float64)
        stats = torch.cat([fields, named]).to(device)
        return Rollout(ids, mask, width, done, advantages, None, None, stats)

    def rank_state(self) -> dict:
        """The completions kept for the passes of num_iterations still to come: a run resumed
        between two passes of a batch reuses them, as the uninterrupted run does."""
        return {"rollouts": [(key, {f.name: _to(getattr(r, f.name), "cpu") for f in fields(r)})
                             for key, r in self.rollouts.items()]} if self.rollouts else {}

    def load_rank_state(self, state: dict, device) -> None:
        self.rollouts = {key: Rollout(**{name: _to(value, device) for name, value in r.items()})
                         for key, r in state.get("rollouts", [])}

    def step_tokens(self, batch: dict) -> int:
        """The prompts, once per generation, and the completions sampled for them: what the
        policy's forward pass went through (the prompts alone undercount tokens/s)."""
        kept = self.rollouts.get(tuple(batch["prompt_index"].tolist()))
        return int(kept.mask.sum()) if kept is not None else real_tokens(batch)

    def rollout_for(self, model, batch: dict[str, torch.Tensor], exp) -> Rollout:
        """The batch's completions: sampled now, or kept from the first of its
        num_iterations passes."""
        key, times = tuple(batch["prompt_index"].tolist()), exp.training.num_iterations
        kept = self.rollouts.get(key)
        if kept is None or kept.uses >= times:
            self.rollouts = {k: r for k, r in self.rollouts.items() if r.uses < times}
            kept = self.rollouts[key] = self.sample(model, batch, exp)
        kept.uses += 1
        return kept

    # -- the loss ---------------------------------------------------------------------------

    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        return self.rollout_loss(model, self.rollout_for(model, batch, exp), exp)

    def rollout_loss(self, model, rollout: Rollout, exp) -> torch.Tensor:
        t = exp.training
        logps = completion_logps(model, rollout.ids, rollout.mask, rollout.width,
                                 t.sampling_temperature)
        loss, kl, clip = grpo_loss(logps, rollout.old, rollout.ref, rollout.advantages,
                                   rollout.completion_mask, t.epsilon, t.beta)
        stats = rollout.stats.clone()
        stats[2], stats[3] = kl.double().sum(), clip.double().sum()
        self.window = stats if self.window is None else self.window + stats
        return loss

    def step_values(self, accelerator) -> dict[str, float]:
        """Means since the last step event over every rank: reward, its std within a group,
        KL to the reference, clipped-token fraction, completion length, the fraction of groups
        whose rewards were all alike (no signal), and each built-in reward function."""
        sums = self.window
        if sums is None:
            return {}
        self.window = None
        if accelerator.num_processes > 1:
            sums = accelerator.reduce(sums, reduction="sum")
        completions, groups = max(float(sums[6]), 1.0), max(float(sums[7]), 1.0)
        out = {"train_reward": float(sums[0]) / completions,
               "train_reward_std": float(sums[1]) / groups,
               "train_kl": float(sums[2]) / completions,
               "train_clip_ratio": float(sums[3]) / completions,
               "train_completion_length": float(sums[4]) / completions,
               "train_zero_std_fraction": float(sums[5]) / groups}
        for k, name in enumerate(self.rewards.names):
            if name in BUILTIN_FIELDS:
                out[BUILTIN_FIELDS[name]] = float(sums[8 + k]) / completions
        return out

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, model, tokenizer, prompts: list[PromptRow], accelerator,
                 exp) -> EvalResult:
        """Greedy answers (prediction.*) to every validation prompt: their mean reward (the
        metric `reward`; val_loss is its negative, so the best checkpoint is the most rewarded)
        and exact-answer rate; samples: the first prediction.num_samples prompts with the
        greedy answer and a group of sampled completions with their rewards."""
        examples = [p.example for p in prompts]
        answers = generate_all(model, tokenizer, examples, exp, accelerator)
        numbers = [0.0, 0.0]
        samples: list[dict] = []
        if accelerator.is_main_process:
            _, total = self.rewards.score([p.example.prompt_text for p in prompts], answers,
                                          [p.row for p in prompts])
            column = exp.dataset.answer_column
            exact = [float(same_answer(a, p.row.get(column, ""))) for a, p in
                     zip(answers, prompts)]
            numbers = [sum(total) / max(len(total), 1), sum(exact) / max(len(exact), 1)]
            samples = self.samples(model, prompts[:exp.prediction.num_samples], answers, exp,
                                   accelerator)
        if accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            numbers = broadcast_object_list([numbers])[0]
        reward, exact = numbers
        values = {"reward": reward, "exact_match": exact}
        metric = exp.prediction.metric
        return EvalResult(-reward, metric, values[metric], values, samples)

    def samples(self, model, prompts: list[PromptRow], answers: list[str], exp,
                accelerator) -> list[dict]:
        if not prompts:
            return []
        collate = self.train_collator(exp, self.tokenizer)
        batch = {k: v.to(accelerator.device) for k, v in collate(prompts).items()}
        with accelerator.autocast():
            ids = self.sampled_texts(model, batch, exp)
        size = exp.training.num_generations
        shown = []
        for k, prompt in enumerate(prompts):
            texts = ids[k * size:(k + 1) * size][:SHOWN]
            _, total = self.rewards.score([prompt.example.prompt_text] * len(texts), texts,
                                          [prompt.row] * len(texts))
            shown.append({
                "prompt": self.tokenizer.decode(prompt.example.prompt_ids),
                "generation": answers[k], "reference": str(prompt.example.answer_text),
                "completions": [{"text": text.strip(), "reward": round(r, 4)}
                                for text, r in zip(texts, total)]})
        return shown

    def sampled_texts(self, model, batch, exp) -> list[str]:
        out = self.generate_groups(model, batch, exp)
        return self.tokenizer.batch_decode(out[:, batch["input_ids"].size(1):],
                                           skip_special_tokens=True)


def _to(value, device):
    return value.to(device) if isinstance(value, torch.Tensor) else value

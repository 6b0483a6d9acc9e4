"""The training loop: seeded resumable batches, accumulation, clipping, events, eval, checkpoints."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from tui_tune.config.problem_types import step_repeats
from tui_tune.train.augment import mask_random_tokens
from tui_tune.train.checkpoint import save_checkpoint
from tui_tune.train.collate import epoch_batches, rank_batches
from tui_tune.train.reporting import memory_gib
from tui_tune.train.setup import Session
from tui_tune.train.signals import StopRequest
from tui_tune.train.sinks import EVAL, SAMPLE, STEP

POLICY_REASON = {"last": "last", "each_evaluation": "each", "best": "best"}
ORPHANED = "orphaned"  # the run directory was deleted while training: end without a trace


@dataclass
class Window:
    """What happened since the last step event; read (one sync) only at log steps."""
    loss: torch.Tensor | None = None
    steps: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, loss: torch.Tensor, tokens: int) -> None:
        self.loss = loss if self.loss is None else self.loss + loss
        self.steps += 1
        self.tokens += tokens


def epoch_loader(session: Session, epoch: int, skip: int, collate) -> DataLoader:
    acc, t = session.accelerator, session.exp.training
    lengths = [len(e) for e in session.data.train]
    plan = epoch_batches(lengths, t.batch_size, session.progress.seed, epoch, t.group_by_length,
                         acc.num_processes)
    mine = repeated(rank_batches(plan, acc.process_index, acc.num_processes),
                    t.grad_accumulation, step_repeats(session.exp))
    usable = session.steps_per_epoch * t.grad_accumulation
    workers = session.exp.environment.dataloader_workers
    return DataLoader(session.data.train, batch_sampler=mine[skip:usable], collate_fn=collate,
                      num_workers=workers, pin_memory=acc.device.type == "cuda",
                      generator=torch.Generator().manual_seed(epoch))  # spare the global RNG


def repeated(batches: list[list[int]], accumulation: int, times: int) -> list[list[int]]:
    """Each step's micro-batches handed `times` times in a row (grpo's num_iterations)."""
    if times == 1:
        return batches
    steps = [batches[k:k + accumulation] for k in range(0, len(batches), accumulation)]
    return [batch for step in steps for _ in range(times) for batch in step]


def masked_inputs(session: Session, batch: dict) -> dict:
    """Augmentation: random input tokens replaced (never a sequence's first, the begin token,
    wherever padding put it); labels untouched."""
    probability = session.exp.augmentation.token_mask_probability
    if probability <= 0:
        return batch
    ids = batch["input_ids"]
    mask = batch.get("attention_mask", torch.ones_like(ids))
    if "position_ids" in batch:
        first = batch["position_ids"] == 0
    else:
        first = (mask.cumsum(dim=-1) == 1) & mask.bool()
    masked = mask_random_tokens(ids, mask, probability, len(session.tokenizer), protected=first)
    return {**batch, "input_ids": masked}


def optimizer_step(session: Session, micro_batches: list[dict]) -> tuple[torch.Tensor, ...]:
    """Forward/backward over the accumulated micro-batches, then clip and step."""
    acc, model, t = session.accelerator, session.model, session.exp.training
    total_loss = torch.zeros((), device=acc.device)
    for k, batch in enumerate(micro_batches):
        batch = {key: value.to(acc.device, non_blocking=True) for key, value in batch.items()}
        batch = masked_inputs(session, batch)
        sync = k == len(micro_batches) - 1
        with contextlib.nullcontext() if sync else acc.no_sync(model):
            session.reporter.phase = "forward"
            with acc.autocast():
                loss = session.task.loss(model, batch, session.exp)
            session.reporter.phase = "backward"
            acc.backward(loss / len(micro_batches))
        total_loss += loss.detach() / len(micro_batches)
    session.reporter.phase = "optimizer"
    session.step_lr = base_lr(session)  # the lr this step uses, before the schedule moves on
    # all parameters, not only trainable ones: accelerate's FSDP path compares the lists
    grad_norm = acc.clip_grad_norm_(session.all_params,
                                    t.grad_clip if t.grad_clip > 0 else float("inf"))
    session.optimizer.step()
    session.scheduler.step()
    session.optimizer.zero_grad(set_to_none=True)
    return total_loss, grad_norm


def base_lr(session: Session) -> float:
    """The learning rate the optimizer uses now for the main parameter group (the one at
    training.lr; differential_lr groups may come first). When every trainable weight is in a
    differential group, training.lr times the schedule's current factor."""
    groups, main = session.optimizer.param_groups, session.exp.training.lr
    group = next((g for g in groups if g["initial_lr"] == main), None)
    if group is not None:
        return group["lr"]
    return main * groups[0]["lr"] / groups[0]["initial_lr"]


def window_numbers(acc, window: Window, gone: bool = False) -> tuple[float, float, bool]:
    """Mean loss and tokens of the window over all ranks, and whether any rank found the run
    directory gone: one sync, one all-reduce if several."""
    if acc.num_processes == 1:
        return window.loss.item() / window.steps, float(window.tokens), gone
    numbers = torch.stack([window.loss.float() / window.steps,
                           torch.tensor(float(window.tokens), device=acc.device),
                           torch.tensor(float(gone), device=acc.device)])
    numbers = acc.reduce(numbers, reduction="sum")
    numbers[0] /= acc.num_processes
    loss, tokens, gone_ranks = numbers.tolist()
    return loss, tokens, gone_ranks > 0


def report_step(session: Session, window: Window, grad_norm: torch.Tensor) -> bool:
    """The step event; True (on every rank) when the run directory was deleted instead."""
    acc, p = session.accelerator, session.progress
    loss, tokens, gone = window_numbers(acc, window, session.reporter.run_dir_gone())
    if gone:
        return True
    elapsed = max(time.perf_counter() - window.started, 1e-9)
    lr = session.step_lr
    norm = float(grad_norm) if session.exp.logging.log_grad_norm else None
    write(session, STEP, dict(
        step=p.step, epoch=round(p.step / session.steps_per_epoch, 4), loss=loss,
        lr=lr, grad_norm=norm, tokens=int(tokens), tokens_seen=p.tokens_seen * acc.num_processes,
        tokens_per_s=round(tokens / elapsed, 1), step_time_s=round(elapsed / window.steps, 5),
        **memory_gib(acc.device), **session.task.step_values(acc)))
    return False


def write(session: Session, kind: str, record: dict) -> None:
    for sink in session.sinks:
        sink.write(kind, record)


def eval_interval(session: Session) -> int:
    t = session.exp.training
    return t.eval_every_steps or max(1, round(t.eval_every_epochs * session.steps_per_epoch))


def run_evaluation(session: Session) -> float | None:
    if not session.data.val:
        return None
    session.reporter.phase = "eval"
    result = session.task.evaluate(session.model, session.tokenizer, session.data.val,
                                   session.accelerator, session.exp)
    step = session.progress.step
    write(session, EVAL, dict(step=step, val_loss=result.val_loss, **result.values,
                              metric=result.metric, metric_value=result.metric_value))
    for sample in result.samples:
        write(session, SAMPLE, dict(step=step, **sample))
    return result.val_loss


def checkpoint(session: Session, reason: str) -> None:
    t = session.exp.training
    path = save_checkpoint(session.run_dir, session.accelerator, session.model, session.optimizer,
                           session.scheduler, session.progress, t.keep_checkpoints,
                           session.adapter, session.task.rank_state())
    session.reporter.event("checkpoint", step=session.progress.step, path=str(path), reason=reason)


def after_evaluation(session: Session, val_loss: float | None) -> bool:
    """The save_checkpoint policy after an evaluation; True when it saved one."""
    policy, p = session.exp.training.save_checkpoint, session.progress
    improved = val_loss is not None and (p.best_val_loss is None or val_loss < p.best_val_loss)
    if improved:
        p.best_val_loss = val_loss
        if policy == "best":
            p.best_step = p.step
    if policy in ("last", "each_evaluation") or (policy == "best" and improved):
        checkpoint(session, POLICY_REASON[policy])
        return True
    return False


def run_epoch(session: Session, collate, stop: StopRequest, window: Window) -> str | None:
    """Steps through the rest of the current epoch; returns 'stopped' when asked to stop,
    ORPHANED when the run directory was deleted."""
    p, t = session.progress, session.exp.training
    every_eval, every_ckpt = eval_interval(session), t.checkpoint_every_steps
    pending: list[dict] = []
    if p.epoch > 0 and session.data.redraw is not None:
        session.data.train = session.data.for_epoch(p.epoch)  # epoch 0's are already there
    for batch in epoch_loader(session, p.epoch, p.batch_in_epoch, collate):
        pending.append(batch)
        if len(pending) < t.grad_accumulation:
            continue
        loss, grad_norm = optimizer_step(session, pending)
        tokens = sum(session.task.step_tokens(b) for b in pending)
        pending = []
        p.step += 1
        p.batch_in_epoch += t.grad_accumulation
        p.tokens_seen += tokens
        window.add(loss, tokens)
        if p.step % session.exp.logging.log_every_steps == 0 or p.step == session.steps_total:
            if report_step(session, window, grad_norm):
                return ORPHANED  # deleted under us: nothing left to write to
            window.__init__()
        saved = False
        if p.step % every_eval == 0 or p.step == session.steps_total:
            saved = after_evaluation(session, run_evaluation(session))
            window.started = time.perf_counter()
        if every_ckpt and p.step % every_ckpt == 0 and not saved:
            checkpoint(session, "interval")  # not twice at one step
        if stop.agreed(session.accelerator):
            checkpoint(session, "signal")
            return "stopped"
        if p.step >= session.steps_total:
            return None
    p.epoch += 1
    p.batch_in_epoch = 0
    return None


def train(session: Session, stop: StopRequest) -> str:
    """Runs until steps_total or a stop request; returns the end status (or ORPHANED)."""
    session.model.train()
    if stop.agreed(session.accelerator):
        return "stopped"  # asked to stop while loading: nothing trained, nothing to save
    collate, window = session.task.train_collator(session.exp, session.tokenizer), Window()
    if session.exp.training.evaluate_before_training and session.progress.step == 0:
        run_evaluation(session)
        window = Window()
    started = time.perf_counter()
    while session.progress.step < session.steps_total:
        session.reporter.phase = "forward"
        ended = run_epoch(session, collate, stop, window)
        if ended is not None:
            session.progress.elapsed_s += time.perf_counter() - started
            return ended
    return "completed"

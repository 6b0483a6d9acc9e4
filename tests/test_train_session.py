"""A training session built in-process: the batching settings reach the loader the loop uses."""

from __future__ import annotations

import math

import pytest

from tui_tune.train.loop import epoch_loader
from tui_tune.train.reporting import Reporter
from tui_tune.train.setup import build_session

pytestmark = pytest.mark.xdist_group("train-session")  # one Accelerator per process


@pytest.fixture(scope="module")
def session(tmp_path_factory, make_run_dir):
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "session", [
        "dataset.data_sample=0.25", 'tokenizer.padding_side="left"',
        "tokenizer.padding_quantile=0.5", "training.group_by_length=true",
        "training.batch_size=16", 'dataset.system_column="system"',
        "augmentation.neftune_noise_alpha=5"])
    built = build_session(run_dir, resume=False, reporter=Reporter(run_dir, rank=0))
    yield built
    built.reporter.end("completed")


def collator(session):
    return session.task.train_collator(session.exp, session.tokenizer)


def test_quantile_left_padding_and_length_groups_reach_the_loader(session):
    loader = epoch_loader(session, 0, 0, collator(session))
    spreads = []
    for n, batch in enumerate(loader):
        plan = loader.batch_sampler[n]
        lengths = sorted(len(session.data.train[i]) for i in plan)
        width = batch["input_ids"].shape[1]
        assert width == lengths[math.ceil(0.5 * len(lengths)) - 1]  # padding_quantile 0.5
        mask = batch["attention_mask"]
        assert bool(mask[:, -1].all())  # padding_side left: every row ends with a token
        spreads.append(lengths[-1] - lengths[0])
        if n == 20:
            break
    assert sum(spreads) / len(spreads) <= 1  # group_by_length: similar lengths together


def test_plain_session_settings(session):
    assert session.accelerator.num_processes == 1
    assert session.steps_total == 300  # demo-tiny's max_steps
    assert session.steps_per_epoch == len(session.data.train) // 16


def test_token_masking_in_the_loop_spares_labels_padding_and_the_first_token(session):
    import torch

    from tui_tune.train.loop import masked_inputs

    by_length = sorted(session.data.train, key=len)
    batch = collator(session)(by_length[:8] + by_length[-8:])  # some rows padded
    aug = session.exp.augmentation
    aug.token_mask_probability = 0.5
    try:
        torch.manual_seed(0)
        out = masked_inputs(session, batch)
    finally:
        aug.token_mask_probability = 0.0
    assert torch.equal(out["labels"], batch["labels"])
    changed = out["input_ids"] != batch["input_ids"]
    real = batch["attention_mask"].bool()
    first = real & (real.cumsum(-1) == 1)  # left padding: the first real token, not column 0
    assert first[:, 0].sum() < len(first) and not changed[first].any()
    assert not changed[~real].any()
    assert 0.35 < changed[real & ~first].float().mean() < 0.6
    assert masked_inputs(session, batch) is batch  # probability 0: untouched


def test_checkpoints_of_a_compiled_model_load_back(tmp_path, session):
    """architecture.compile wraps the model (state-dict keys gain `_orig_mod.`): checkpoints
    must save and load the plain model's weights, or a resume silently starts over."""
    import torch

    from tui_tune.train.checkpoint import load_checkpoint, save_checkpoint

    compiled = torch.compile(session.model)
    weight = session.model.lm_head.weight
    saved = weight.detach().clone()
    args = (session.accelerator, compiled, session.optimizer, session.scheduler)
    folder = save_checkpoint(tmp_path, *args, session.progress, keep=1,
                             adapter=session.adapter)
    with torch.no_grad():
        weight.add_(1.0)
    load_checkpoint(folder, *args, session.adapter)
    assert torch.equal(weight, saved)


def test_neftune_noise_is_on_the_sessions_embeddings_in_training_only(session):
    import torch

    embeddings = session.model.get_input_embeddings()
    ids = torch.randint(3, 300, (2, 16))
    clean = embeddings.weight[ids]
    try:
        session.model.train()
        assert not torch.allclose(embeddings(ids), clean)
        session.model.eval()
        assert torch.equal(embeddings(ids), clean)
    finally:
        session.model.train()


def test_gradient_accumulation_takes_that_many_batches_per_optimizer_step(session):
    from tui_tune.train.checkpoint import Progress
    from tui_tune.train.loop import Window, run_epoch
    from tui_tune.train.signals import StopRequest

    training, saved = session.exp.training, session.progress
    training.grad_accumulation, training.checkpoint_every_steps = 3, None
    session.progress = Progress(seed=saved.seed)
    stop = StopRequest()
    stop.requested = True  # stop after the first optimizer step
    try:
        assert run_epoch(session, collator(session), stop, Window()) == "stopped"
        assert (session.progress.step, session.progress.batch_in_epoch) == (1, 3)
    finally:
        training.grad_accumulation, session.progress = 1, saved


def test_best_checkpoint_survives_pruning_by_newer_ones(session):
    from tui_tune.runs.files import checkpoint_dirs
    from tui_tune.train.checkpoint import Progress
    from tui_tune.train.loop import after_evaluation, checkpoint

    training, saved = session.exp.training, session.progress
    training.save_checkpoint, training.keep_checkpoints = "best", 1
    session.progress = Progress(seed=saved.seed)
    try:
        for step, val_loss in ((1, 2.0), (2, 1.0), (3, None), (4, 1.5), (5, None)):
            session.progress.step = step
            if val_loss is None:
                checkpoint(session, "interval")
            else:
                after_evaluation(session, val_loss)
        kept = [p.name for p in checkpoint_dirs(session.run_dir)]
        assert kept == ["step-2", "step-5"]  # the best (val 1.0) and the newest
    finally:
        training.save_checkpoint, training.keep_checkpoints = "last", 2
        session.progress = saved

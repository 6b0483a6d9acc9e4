"""dpo: on one batch of the demo's preference pairs, our loss, rewards and gradients equal
TRL's DPOTrainer (1.16) for each loss it has (sigmoid, ipo, hinge; label smoothing by the
loss's linearity), and kto_pair equals TRL 0.8's formula on TRL's own log-probs. The cached
reference log-probs equal the live ones."""

from __future__ import annotations

import pytest
import torch

from tui_tune.config.presets import resolve
from tui_tune.train.formatting import IGNORE_INDEX

BETA = 0.3
PAIRS = 6


@pytest.fixture(scope="module")
def setup(demo_assets, tmp_path_factory):
    """(exp, tokenizer, LoRA model, our task, a batch of PAIRS pairs, TRL's DPOTrainer)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from tui_tune.train.adapters import apply_method
    from tui_tune.train.logprobs import Reference
    from tui_tune.train.model import load_backbone, load_tokenizer
    from tui_tune.train.tasks import task_named
    from tui_tune.train.tasks.dpo import PairCollator

    exp = resolve("demo-dpo", [
        f'general.backbone="{demo_assets / "model"}"',
        f'dataset.train_file="{demo_assets / "data" / "preference.jsonl"}"',
        "adapter.dropout=0.0", f"training.beta={BETA}"]).experiment
    torch.manual_seed(0)
    tokenizer = load_tokenizer(exp)
    task = task_named("dpo")
    data = task.load_data(exp, tokenizer, seed=1)
    model = apply_method(load_backbone(exp, tokenizer, torch.device("cpu"), data), exp)
    with torch.no_grad():  # LoRA starts as the identity: move it so the rewards are not 0
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.05)
    task.reference = Reference()
    batch = PairCollator(tokenizer.pad_token_id)(data.train[:PAIRS])
    texts = Dataset.from_dict({"prompt": ["a"], "chosen": ["b"], "rejected": ["c"]})
    args = DPOConfig(output_dir=str(tmp_path_factory.mktemp("trl")), beta=BETA,
                     report_to="none", use_cpu=True, bf16=False,
                     per_device_train_batch_size=PAIRS)
    trainer = DPOTrainer(model=model, args=args, train_dataset=texts,
                         processing_class=tokenizer)
    # given a peft model, TRL keeps a copy of its adapter ("ref") as the reference; without it
    # TRL switches the adapter off, as we do for a run's new adapter
    model.delete_adapter("ref")
    return exp, model, task, batch, trainer


def trl_inputs(batch: dict, swap: bool = False) -> dict:
    """Our batch as TRL's collator lays it out: [chosen..., rejected...] with a completion
    mask on the answer tokens (TRL shifts it as our labels are shifted)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    completion = (batch["labels"] != IGNORE_INDEX).long()
    if swap:
        ids, mask, completion = (torch.cat(t.chunk(2)[::-1]) for t in (ids, mask, completion))
    return {"input_ids": ids, "attention_mask": mask, "completion_mask": completion}


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def ours(setup, kind: str, smoothing: float = 0.0):
    exp, model, task, batch, _ = setup
    exp = exp.model_copy(update={"training": exp.training.model_copy(
        update={"dpo_loss": kind, "label_smoothing": smoothing})})
    model.zero_grad()
    out = task.pair_losses(model, batch, exp)
    out.loss.backward()
    return out, grads(model)


def trl_loss(trainer, model, inputs, kind: str):
    trainer.loss_types, trainer.loss_weights = [kind], [1.0]
    trainer._metrics["train"].clear()
    model.zero_grad()
    loss = trainer.compute_loss(model, inputs)
    loss.backward()
    return loss, grads(model), {k: v[-1] for k, v in trainer._metrics["train"].items()}


def assert_same_grads(mine: dict, theirs: dict) -> None:
    assert mine.keys() == theirs.keys() and mine
    for name, grad in mine.items():
        assert torch.allclose(grad, theirs[name], atol=1e-4, rtol=1e-4), name


@pytest.mark.parametrize("kind", ["sigmoid", "ipo", "hinge"])
def test_loss_rewards_and_gradients_equal_trl(setup, kind):
    _, model, _, batch, trainer = setup
    out, mine = ours(setup, kind)
    loss, theirs, logged = trl_loss(trainer, model, trl_inputs(batch), kind)
    assert float(out.loss) == pytest.approx(float(loss), abs=1e-4)
    assert float(out.loss) != pytest.approx(0.6931, abs=1e-3)  # not the trivial start
    chosen, rejected = out.chosen_rewards, out.rejected_rewards
    assert float(chosen.mean()) == pytest.approx(logged["rewards/chosen"], abs=1e-4)
    assert float(rejected.mean()) == pytest.approx(logged["rewards/rejected"], abs=1e-4)
    assert float((chosen - rejected).mean()) == pytest.approx(logged["rewards/margins"], abs=1e-4)
    assert float((chosen > rejected).float().mean()) == pytest.approx(
        logged["rewards/accuracies"], abs=1e-6)
    assert float(out.chosen_logps.mean()) == pytest.approx(logged["logps/chosen"], abs=1e-4)
    assert float(out.rejected_logps.mean()) == pytest.approx(logged["logps/rejected"], abs=1e-4)
    assert_same_grads(mine, theirs)


def test_label_smoothing_is_conservative_dpo_as_trl_composes_it(setup):
    """cDPO = (1 - e) * sigmoid(chosen over rejected) + e * sigmoid(rejected over chosen):
    TRL 1.16 dropped the smoothed sigmoid, so it is TRL's loss of the pair and of the pair
    swapped, weighed, with the gradients alike."""
    _, model, _, batch, trainer = setup
    e = 0.2
    out, mine = ours(setup, "sigmoid", e)
    straight, g_straight, _ = trl_loss(trainer, model, trl_inputs(batch), "sigmoid")
    swapped, g_swapped, _ = trl_loss(trainer, model, trl_inputs(batch, swap=True), "sigmoid")
    assert float(out.loss) == pytest.approx(float((1 - e) * straight + e * swapped), abs=1e-4)
    assert_same_grads(mine, {n: (1 - e) * g + e * g_swapped[n] for n, g in g_straight.items()})


def test_kto_pair_equals_trl_formula_on_trls_log_probs(setup):
    """TRL dropped kto_pair after 0.8 (H2O keeps it): its formula, transcribed, on the
    sequence log-probs TRL's fused head and reference computation give."""
    _, model, _, batch, trainer = setup
    out, mine = ours(setup, "kto_pair")
    inputs = trl_inputs(batch)
    model.zero_grad()
    labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
    policy = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                   labels=labels, fused_lm_head=True, use_cache=False).log_probs.sum(dim=1)
    ref_chosen, ref_rejected = trainer.compute_ref_log_probs(model, inputs)
    chosen, rejected = policy.chunk(2)
    chosen_kl = (chosen - ref_chosen).mean().clamp(min=0)  # TRL 0.8.6 dpo_trainer.dpo_loss
    rejected_kl = (rejected - ref_rejected).mean().clamp(min=0)
    chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
    losses = torch.cat((1 - torch.sigmoid(BETA * (chosen_ratio - rejected_kl)),
                        1 - torch.sigmoid(BETA * (chosen_kl - rejected_ratio))), 0)
    losses.mean().backward()
    assert float(out.loss) == pytest.approx(float(losses.mean()), abs=1e-4)
    assert_same_grads(mine, grads(model))


def test_cached_reference_log_probs_equal_the_live_ones(setup):
    """(One process without mixed precision: TRL's trainer left accelerate's shared state in
    bf16, which a new Accelerator would take.)"""
    import contextlib
    from types import SimpleNamespace

    from tui_tune.train.tasks.dpo import reference_table

    exp, model, task, batch, _ = setup
    live = task.reference.logps(model, batch)[0]
    tokenizer = model_tokenizer(exp)
    pairs = task.load_data(exp, tokenizer, seed=1).train[:PAIRS]
    one = SimpleNamespace(process_index=0, num_processes=1, device=torch.device("cpu"),
                          autocast=contextlib.nullcontext)
    table = reference_table(model, task.reference, pairs, one, 4, tokenizer.pad_token_id)
    cached = torch.cat([table[batch["pair_index"], 0], table[batch["pair_index"], 1]])
    assert torch.allclose(cached, live, atol=1e-4)
    assert model.training  # the reference pass leaves the model as it found it


def test_output_head_runs_only_from_the_earliest_answer_on(setup):
    """As TRL's fused head: the prompts' logits are never made (the demo's prompts are three
    quarters of a pair's tokens), and the log-probs equal those from every position's logits."""
    from tui_tune.train.logprobs import answer_logps, answer_positions, sequence_logps
    from tui_tune.train.tasks.causal_lm import forward_batch

    _, model, _, batch, _ = setup
    widths = []
    head = model.get_output_embeddings().register_forward_hook(
        lambda module, inputs, output: widths.append(inputs[0].size(1)))
    try:
        with torch.no_grad():
            logps, counts = sequence_logps(model, batch)
    finally:
        head.remove()
    first = int((batch["labels"] != IGNORE_INDEX).any(dim=0).nonzero()[0])
    assert widths == [batch["labels"].size(1) - first + 1] == [answer_positions(batch["labels"])]
    assert widths[0] < batch["labels"].size(1) // 2
    with torch.no_grad():
        full, full_counts = answer_logps(forward_batch(model, batch), batch["labels"])
    assert torch.allclose(logps, full, atol=1e-5)
    assert torch.equal(counts, full_counts)


def model_tokenizer(exp):
    from tui_tune.train.model import load_tokenizer

    return load_tokenizer(exp)

"""grpo: on one fixed batch of sampled completions and rewards, our per-token log-probs, loss
and gradients equal TRL 1.16 GRPOTrainer's `_compute_loss` with loss_type "grpo" (the same
beta, epsilon and temperature), both when the batch was sampled by these weights (old log-probs
= the current ones, detached) and when it is reused (num_iterations > 1: other old log-probs,
so the clip bites). Advantages are TRL's group normalisation; sampling leaves the model in
training mode; each prompt's group is num_generations completions cut after the end token."""

from __future__ import annotations

import pytest
import torch

from tui_tune.config.presets import resolve

BETA, EPSILON, TEMPERATURE, GENERATIONS, PROMPTS = 0.2, 0.2, 0.7, 4, 3


@pytest.fixture(scope="module")
def setup(demo_assets, tmp_path_factory):
    """(exp, LoRA model, our task, a rollout of PROMPTS x GENERATIONS, TRL's GRPOTrainer)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from tui_tune.train.adapters import apply_method
    from tui_tune.train.logprobs import Reference
    from tui_tune.train.model import load_backbone, load_tokenizer
    from tui_tune.train.tasks import task_named

    exp = resolve("demo-grpo", [
        f'general.backbone="{demo_assets / "model"}"',
        f'dataset.train_file="{demo_assets / "data" / "train.jsonl"}"',
        "adapter.dropout=0.0", f"training.beta={BETA}", f"training.epsilon={EPSILON}",
        f"training.sampling_temperature={TEMPERATURE}",
        f"training.num_generations={GENERATIONS}", "training.max_completion_length=6"]).experiment
    torch.manual_seed(0)
    tokenizer = load_tokenizer(exp)
    task = task_named("grpo")
    data = task.load_data(exp, tokenizer, seed=1)
    model = apply_method(load_backbone(exp, tokenizer, torch.device("cpu"), data), exp)
    with torch.no_grad():  # LoRA starts as the identity: move it so the KL is not 0
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.05)
    model.train()
    task.reference = Reference()
    batch = task.train_collator(exp, tokenizer)(data.train[:PROMPTS])
    rollout = task.sample(model, batch, exp)
    # fixed rewards with a spread in every group (a random model rarely answers right)
    rewards = torch.linspace(-1.0, 2.0, PROMPTS * GENERATIONS).roll(5)
    rollout.advantages = group_advantages(rewards)
    args = GRPOConfig(output_dir=str(tmp_path_factory.mktemp("trl")), beta=BETA,
                      epsilon=EPSILON, temperature=TEMPERATURE, loss_type="grpo",
                      num_generations=GENERATIONS, per_device_train_batch_size=GENERATIONS,
                      max_completion_length=6, report_to="none", use_cpu=True, bf16=False)
    prompts = Dataset.from_dict({"prompt": ["a"] * 4})
    trainer = GRPOTrainer(model=model, reward_funcs=lambda completions, **_: [0.0] * len(
        completions), args=args, train_dataset=prompts, processing_class=tokenizer)
    return exp, model, task, rollout, trainer


def group_advantages(rewards):
    from tui_tune.train.tasks.grpo import group_advantages as ours

    return ours(rewards, GENERATIONS)[0]


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def trl_inputs(rollout, old=None) -> dict:
    width = rollout.width
    return {"prompt_ids": rollout.ids[:, :width], "prompt_mask": rollout.mask[:, :width],
            "completion_ids": rollout.ids[:, width:], "completion_mask": rollout.completion_mask,
            "advantages": rollout.advantages, "old_per_token_logps": old,
            "ref_per_token_logps": rollout.ref,
            "num_items_in_batch": rollout.completion_mask.sum()}


def compare(setup, old_shift: float | None):
    from tui_tune.train.logprobs import completion_logps
    from tui_tune.train.tasks.grpo import grpo_loss

    exp, model, task, rollout, trainer = setup
    old = None
    if old_shift is not None:
        with torch.no_grad():
            current = completion_logps(model, rollout.ids, rollout.mask, rollout.width,
                                       TEMPERATURE)
        noise = torch.randn(current.shape, generator=torch.Generator().manual_seed(3))
        old = current + old_shift * noise
    rollout.old = old
    model.zero_grad()
    loss = task.rollout_loss(model, rollout, exp)
    loss.backward()
    mine = grads(model)
    model.zero_grad()
    trainer.current_gradient_accumulation_steps = 1
    theirs_loss = trainer._compute_loss(model, trl_inputs(rollout, old))
    theirs_loss.backward()
    theirs = grads(model)
    assert float(loss) == pytest.approx(float(theirs_loss), abs=1e-4)
    assert mine.keys() == theirs.keys() and mine
    for name, grad in mine.items():
        assert torch.allclose(grad, theirs[name], atol=1e-4, rtol=1e-4), name
    with torch.no_grad():
        logps = completion_logps(model, rollout.ids, rollout.mask, rollout.width, TEMPERATURE)
    return loss, grpo_loss(logps, old, rollout.ref, rollout.advantages,
                           rollout.completion_mask, EPSILON, BETA)


def test_rollout_groups_cut_after_the_end_token_with_reference_log_probs(setup):
    _, model, _, rollout, trainer = setup
    assert model.training  # sampling switched to eval mode and back
    assert rollout.ids.shape[0] == PROMPTS * GENERATIONS
    prompts = rollout.ids[:, :rollout.width].view(PROMPTS, GENERATIONS, -1)
    assert (prompts == prompts[:, :1]).all()  # a group shares its prompt
    eos = trainer.processing_class.eos_token_id
    for row, mask in zip(rollout.ids[:, rollout.width:], rollout.completion_mask):
        kept = row[mask.bool()].tolist()
        assert eos not in kept[:-1]
    assert rollout.ref is not None and rollout.ref.shape == rollout.completion_mask.shape


def test_log_probs_equal_trls(setup):
    from tui_tune.train.logprobs import completion_logps

    _, model, _, rollout, trainer = setup
    with torch.no_grad():
        mine = completion_logps(model, rollout.ids, rollout.mask, rollout.width, TEMPERATURE)
        theirs = trainer._get_per_token_logps_and_entropies(
            model, rollout.ids, rollout.mask, rollout.ids.size(1) - rollout.width)[0]
    kept = rollout.completion_mask.bool()
    assert torch.allclose(mine[kept], theirs[kept], atol=1e-4)


def test_loss_and_gradients_equal_trl_on_policy(setup):
    _, (_, kl, clip) = compare(setup, None)
    assert float(kl.mean()) > 1e-4  # the KL term takes part
    assert float(clip.sum()) == 0.0  # the ratio is 1


def test_loss_and_gradients_equal_trl_with_reused_completions(setup):
    _, (_, _, clip) = compare(setup, 0.3)
    assert float(clip.mean()) > 0.0  # the clip takes part


def test_group_advantages_equal_trls_normalisation():
    from trl.trainer.utils import nanstd

    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    grouped = rewards.view(-1, 4)
    expected = (grouped - grouped.mean(1, keepdim=True)) / (nanstd(grouped, dim=1).unsqueeze(1)
                                                           + 1e-4)
    assert torch.allclose(group_advantages(rewards), expected.reshape(-1))
    assert (group_advantages(rewards)[4:] == 0).all()  # a group all alike teaches nothing


def test_each_steps_batches_are_handed_num_iterations_times(setup):
    """num_iterations k: k steps per batch planned (worker and estimate alike), each step's
    micro-batches handed k times, the completions sampled the first time and reused."""
    from tui_tune.runs.estimate.duration import plan_steps as estimated
    from tui_tune.train.loop import repeated
    from tui_tune.train.setup import plan_steps

    exp, model, task, _, _ = setup
    assert repeated([[1], [2], [3], [4]], 2, 3) == [[1], [2]] * 3 + [[3], [4]] * 3
    assert repeated([[1], [2]], 1, 1) == [[1], [2]]
    three = exp.model_copy(update={"training": exp.training.model_copy(
        update={"num_iterations": 3, "max_steps": None})})
    assert plan_steps(three, 80, 1)[1] == 3 * plan_steps(exp, 80, 1)[1] == 30
    assert estimated(three, 80, 1) == plan_steps(three, 80, 1)
    two = exp.model_copy(update={"training": exp.training.model_copy(
        update={"num_iterations": 2})})
    batch = task.train_collator(exp, task.tokenizer)(list(task.rows.values())[:2])
    first = task.rollout_for(model, batch, two)
    assert first.old is not None  # the sampling policy's log-probs, kept for the reuse
    assert task.rollout_for(model, batch, two) is first
    assert task.rollout_for(model, batch, two) is not first

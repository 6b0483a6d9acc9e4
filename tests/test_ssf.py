"""SSF and Q-SSF: a learned scale and shift per channel on the target layers' outputs."""

import pytest
import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

from tui_tune.train.adapters.ssf import SSFLayer, apply_ssf, load_ssf, save_ssf
from tui_tune.train.model import keep_4bit_layers_trainable


def tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def test_ssf_starts_as_identity_and_trains_only_scale_and_shift():
    model = tiny_llama()
    ids = torch.randint(0, 64, (2, 10))
    before = model(ids).logits
    layers = apply_ssf(model, ["all-linear"])
    assert len(layers) == 2 * 7 and not any("lm_head" in n for n in layers)
    assert torch.allclose(model(ids).logits, before, atol=1e-6)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("ssf_scale", "ssf_shift")) for n in trainable)
    expected = 2 * sum(m.base.out_features for m in model.modules() if isinstance(m, SSFLayer))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


def test_ssf_targets_by_name_and_refuses_no_match():
    assert all(n.endswith(("q_proj", "v_proj")) for n in apply_ssf(tiny_llama(), ["q_proj", "v_proj"]))
    with pytest.raises(ValueError, match="matched no linear layer"):
        apply_ssf(tiny_llama(), ["nonexistent"])


def test_ssf_learns_and_reloads(tmp_path):
    model = tiny_llama()
    layers = apply_ssf(model, ["all-linear"])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(0, 64, (4, 12))
    losses = []
    for _ in range(20):
        loss = model(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05
    save_ssf(model, layers, tmp_path)
    reloaded = load_ssf(tiny_llama(), tmp_path)
    assert torch.allclose(reloaded(ids).logits, model(ids).logits, atol=1e-5)


def tiny_4bit_llama(folder):
    """Loaded as the worker loads a 4-bit backbone (load_backbone)."""
    tiny_llama().save_pretrained(folder)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant)
    keep_4bit_layers_trainable(model)
    return model


def test_qssf_on_a_4bit_backbone(tmp_path):
    model = tiny_4bit_llama(tmp_path / "m")
    apply_ssf(model, ["all-linear"])
    assert any(type(m.base).__name__ == "Linear4bit" for m in model.modules()
               if isinstance(m, SSFLayer))
    ids = torch.randint(0, 64, (2, 8))
    loss = model(ids, labels=ids).loss
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if n.endswith("ssf_scale")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_4bit_layers_stay_trainable_after_evaluation_on_an_avx512_bf16_cpu(tmp_path, monkeypatch):
    """bitsandbytes repacks 4-bit weights for its AVX512-BF16 CPU kernel at the first eval-mode
    forward; on such a CPU that crashed this tiny model ("shape '[32, 0]' is invalid") and would
    take later training steps through an op without gradients. Simulated here on any CPU."""
    import bitsandbytes.nn.modules

    monkeypatch.setattr(bitsandbytes.nn.modules, "has_avx512bf16", lambda: True)
    model = tiny_4bit_llama(tmp_path / "m")
    apply_ssf(model, ["all-linear"])
    ids = torch.randint(0, 64, (2, 8))
    with torch.no_grad():  # as evaluate.validation_loss does between training steps
        model.eval()(ids)
    model.train()(ids, labels=ids).loss.backward()
    states = [m.weight.quant_state for m in model.modules() if type(m).__name__ == "Linear4bit"]
    assert states and not any(getattr(s, "packing_format_for_cpu", False) for s in states)
    grads = [p.grad for n, p in model.named_parameters() if n.endswith("ssf_scale")]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def ssf_settings(unfreeze=()):
    from types import SimpleNamespace

    return SimpleNamespace(adapter=SimpleNamespace(target_modules=["all-linear"],
                                                   unfreeze_layers=list(unfreeze)))


def test_ssf_trains_and_saves_a_new_task_head(tmp_path):
    """A classifier's head is drawn at random when the backbone loads: SSF leaves it unwrapped,
    trains it whole (as peft's modules_to_save does for LoRA) and saves it with the scales."""
    from transformers import LlamaForSequenceClassification

    from tui_tune.train.adapters import family_for
    from tui_tune.train.tasks import task_named

    def classifier():
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             num_labels=3, pad_token_id=0)
        return LlamaForSequenceClassification(config).eval()

    ssf = family_for("ssf")
    model = ssf.apply(classifier(), ssf_settings(), task_named("classification"))
    assert not any("score" in name for name in model.ssf_layers)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "score.weight" in trainable
    assert trainable - {"score.weight"} and all(
        n.endswith(("ssf_scale", "ssf_shift")) for n in trainable - {"score.weight"})
    with torch.no_grad():  # stands in for training: the head and a scale move
        model.score.weight.add_(0.5)
        next(m for m in model.modules() if isinstance(m, SSFLayer)).ssf_scale.mul_(1.5)
    ids = torch.randint(1, 64, (2, 8))
    ssf.save(model, tmp_path)
    reloaded = load_ssf(classifier(), tmp_path)
    assert torch.allclose(reloaded(ids).logits, model(ids).logits, atol=1e-6)


def test_ssf_saves_the_layers_it_unfreezes(tmp_path):
    """adapter.unfreeze_layers learn beside the scales, so they are saved with them (a resume
    or final/ without them would silently lose that training)."""
    from tui_tune.train.adapters import family_for
    from tui_tune.train.tasks import task_named

    ssf = family_for("ssf")
    model = ssf.apply(tiny_llama(), ssf_settings(["lm_head"]), task_named("causal_lm"))
    assert model.lm_head.weight.requires_grad
    with torch.no_grad():
        model.lm_head.weight.add_(0.25)
    ids = torch.randint(0, 64, (2, 8))
    ssf.save(model, tmp_path)
    fresh = ssf.apply(tiny_llama(), ssf_settings(["lm_head"]), task_named("causal_lm"))
    ssf.load(fresh, tmp_path)  # as a resume loads a checkpoint
    assert torch.allclose(fresh(ids).logits, model(ids).logits, atol=1e-6)

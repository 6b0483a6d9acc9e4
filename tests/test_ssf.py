"""SSF and Q-SSF: a learned scale and shift per channel on the target layers' outputs."""

import pytest
import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

from tui_tune.train.ssf import SSFLayer, apply_ssf, load_ssf, save_ssf


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


def test_qssf_on_a_4bit_backbone(tmp_path):
    tiny_llama().save_pretrained(tmp_path / "m")
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m", quantization_config=quant)
    apply_ssf(model, ["all-linear"])
    assert any(type(m.base).__name__ == "Linear4bit" for m in model.modules()
               if isinstance(m, SSFLayer))
    ids = torch.randint(0, 64, (2, 8))
    loss = model(ids, labels=ids).loss
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if n.endswith("ssf_scale")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

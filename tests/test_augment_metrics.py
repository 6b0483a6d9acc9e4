"""Augmentation changes inputs only while training; metrics give known values."""

import math

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tui_tune.train.augment import add_neftune, mask_random_tokens
from tui_tune.train.metrics import bleu, perplexity


def test_token_masking_replaces_about_the_asked_fraction_and_never_padding():
    generator = torch.Generator().manual_seed(0)
    ids = torch.full((64, 128), 7)
    attention = torch.ones_like(ids)
    attention[:, 100:] = 0
    masked = mask_random_tokens(ids, attention, 0.25, vocab_size=5000, generator=generator)
    changed = masked != ids
    fraction = changed[:, :100].float().mean().item()
    assert 0.22 < fraction < 0.28
    assert not changed[:, 100:].any()
    assert torch.equal(mask_random_tokens(ids, attention, 0.0, 5000), ids)


def test_neftune_noise_only_in_train_mode():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=4,
                                         num_key_value_heads=4))
    ids = torch.randint(0, 64, (2, 16))
    model.eval()
    clean = model(ids).logits
    handle = add_neftune(model, alpha=5.0)
    assert torch.equal(model(ids).logits, clean)
    model.train()
    embeddings = model.get_input_embeddings()
    noisy = embeddings(ids)
    delta = (noisy - embeddings.weight[ids]).abs()
    bound = 5.0 / math.sqrt(16 * 32)
    assert delta.max() <= bound + 1e-6 and delta.mean() > bound / 10
    handle.remove()
    assert torch.equal(embeddings(ids), embeddings.weight[ids])


def test_bleu_on_known_strings():
    assert abs(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) - 100) < 1e-6
    assert bleu(["completely different words here"], ["the cat sat on the mat"]) < 10
    partial = bleu(["the cat sat on a mat"], ["the cat sat on the mat"])
    assert 20 < partial < 100


def test_perplexity():
    assert perplexity(0.0) == 1.0
    assert abs(perplexity(math.log(20)) - 20) < 1e-9
    assert perplexity(1e4) == math.inf

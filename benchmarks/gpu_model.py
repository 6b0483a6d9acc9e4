"""A random-initialised ~1.1B Llama (TinyLlama's shape) and long text rows, built offline.

Only for the GPU bench: there is no hub on the GPU machine, and what is measured is speed
and memory, which do not depend on the weights being trained.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "river", "mountain", "cloud", "stone", "paper", "garden", "engine", "signal", "window", "bridge", "silver", "orange", "window", "market", "planet", "winter", "summer", "lantern", "harbor", "forest", "meadow", "canyon", "island", "desert", "valley", "thunder", "marble", "copper"]
SHAPE = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
             "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000,
             "max_position_embeddings": 4096}


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def prepare_gpu_assets(work: Path, rows: int = 400, device: str = "cuda",
                       shape: dict | None = None) -> tuple[Path, Path]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tui_tune.train.demo import build_tokenizer

    rng = random.Random(0)
    data = [{"prompt": text(rng, 1700), "answer": text(rng, 500)} for _ in range(rows)]
    data_file = work / "long.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in data))
    tokenizer = build_tokenizer([r["prompt"] for r in data[:50]], vocab_size=1024)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, **(shape or SHAPE))).to(torch.bfloat16)
    model_dir = work / "llama-1b"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return model_dir, data_file

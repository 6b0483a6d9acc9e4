"""The offline demo: a BPE tokenizer, a tiny random Llama and a learnable arithmetic dataset.

No model hub is needed: everything is generated from fixed seeds, saved the way a user's
checkpoint is saved (`save_pretrained`), and read back through the same code paths.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 1234
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|prompt|>", "<|answer|>",
                  "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}{{ eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
SYSTEMS = ["You are a calculator.", "Answer with a number.", "Add the two numbers."]
MODEL_SHAPE = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4,
               "num_attention_heads": 4, "num_key_value_heads": 4,
               "max_position_embeddings": 256}


def addition_row(rng: random.Random) -> dict[str, str]:
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    return {"system": rng.choice(SYSTEMS), "prompt": f"What is {a} + {b}?", "answer": str(a + b)}


def make_rows(count: int, seed: int = SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [addition_row(rng) for _ in range(count)]


def make_chained_rows(conversations: int, seed: int = SEED + 1) -> list[dict[str, str]]:
    """Two-turn conversations: a sum, then 'Add k to that.' whose answer needs the first turn."""
    rng, rows = random.Random(seed), []
    for n in range(conversations):
        a, b, k = rng.randint(0, 49), rng.randint(0, 49), rng.randint(1, 9)
        first, second = f"c{n}-1", f"c{n}-2"
        rows.append({"id": first, "parent_id": "", "system": "You are a calculator.",
                     "prompt": f"What is {a} + {b}?", "answer": str(a + b)})
        rows.append({"id": second, "parent_id": first, "system": "You are a calculator.",
                     "prompt": f"Add {k} to that.", "answer": str(a + b + k)})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)


def corpus(rows: list[dict[str, str]]) -> list[str]:
    return [f"{r['system']} {r['prompt']} {r['answer']}" for r in rows] + \
        ["Add 5 to that.", "Reverse the word hello.", "the quick brown fox jumps over the lazy dog"]


def build_tokenizer(texts: list[str], vocab_size: int = 512):
    """A byte-level BPE with single-digit tokens, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<|pad|>", bos_token="<|bos|>", eos_token="<|eos|>",
        additional_special_tokens=SPECIAL_TOKENS[3:])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer, seed: int = SEED):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False, **MODEL_SHAPE)
    return LlamaForCausalLM(config)


def prepare(target: Path, train_rows: int = 4000, chained_conversations: int = 1000) -> Path:
    """Build DIR/model (tokenizer + weights) and DIR/data (train.jsonl, chained.jsonl, and
    demo_labels' sentiment.jsonl and weather.jsonl)."""
    from tui_tune.train.demo_labels import label_datasets

    target = Path(target)
    for name, label_rows in label_datasets().items():
        write_jsonl(target / "data" / name, label_rows)
    rows = make_rows(train_rows)
    write_jsonl(target / "data" / "train.jsonl", rows)
    chained = make_chained_rows(chained_conversations)
    write_jsonl(target / "data" / "chained.jsonl", chained)
    tokenizer = build_tokenizer(corpus(rows + chained))
    model = build_model(tokenizer)
    model.save_pretrained(target / "model")
    tokenizer.save_pretrained(target / "model")
    return target

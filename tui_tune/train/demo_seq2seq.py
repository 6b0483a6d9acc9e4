"""The offline seq2seq demo: numbers written in digits -> the same number in English words
("spell: 372" -> "three hundred seventy two"), a byte-level BPE tokenizer that ends every text
with </s> as T5's does, and a tiny random T5 (encoder-decoder) built from a config.

Everything comes from fixed seeds and is saved with save_pretrained, so the run reads it through
the same AutoTokenizer / AutoModelForSeq2SeqLM paths as a user's T5, BART or Marian.
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 4321
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
PREFIX = "spell: "  # the demo preset's dataset.task_prefix (T5 style)
SPECIALS = ["<pad>", "</s>", "<unk>"]
T5_SHAPE = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2,
            "num_heads": 4, "dropout_rate": 0.0, "feed_forward_proj": "relu"}


def number_words(n: int) -> str:
    """0 <= n < 1000 in English words, without 'and': 372 -> three hundred seventy two."""
    hundreds, rest = divmod(n, 100)
    words = [ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        words += [TENS[rest // 10]] + ([ONES[rest % 10]] if rest % 10 else [])
    elif rest or not hundreds:
        words.append(ONES[rest])
    return " ".join(words)


def make_number_rows(count: int, seed: int = SEED) -> list[dict[str, str]]:
    """Rows of (digits, words): the prompt column holds the digits, the answer the words."""
    rng = random.Random(seed)
    return [{"prompt": str(n), "answer": number_words(n)}
            for n in (rng.randint(0, 999) for _ in range(count))]


def build_seq2seq_tokenizer(texts: list[str], vocab_size: int = 320):
    """Byte-level BPE with single-digit tokens and whole number words, whose post-processor
    appends </s> to every text (as T5's tokenizer does), as a transformers fast tokenizer."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from tui_tune.train.demo_bpe import byte_level_bpe

    core = byte_level_bpe(texts, vocab_size, SPECIALS)
    core.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>",
        special_tokens=[("</s>", core.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>")


def build_seq2seq_model(tokenizer, seed: int = SEED):
    """A tiny random T5: decoding starts from the padding token, as T5's does."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id, **T5_SHAPE)
    return T5ForConditionalGeneration(config)


def write_seq2seq(folder: Path, rows: list[dict[str, str]]) -> Path:
    """folder/: the tokenizer and the T5's weights, as save_pretrained writes a checkpoint."""
    texts = [PREFIX + r["prompt"] for r in rows] + [r["answer"] for r in rows] + \
        [number_words(n) for n in range(100)]
    tokenizer = build_seq2seq_tokenizer(texts)
    build_seq2seq_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

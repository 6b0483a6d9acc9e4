"""The byte-level BPE every demo tokenizer is trained from (the demo Llama's, the tiny T5's)."""

from __future__ import annotations


def byte_level_bpe(texts: list[str], vocab_size: int, specials: list[str]):
    """A byte-level BPE (tokenizers' Tokenizer) with single-digit tokens, trained on `texts`:
    the core of every demo tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    return core

"""Validation metrics besides the loss: perplexity and BLEU (through sacrebleu)."""

from __future__ import annotations

import math


def perplexity(mean_loss: float) -> float:
    """exp of the token-averaged loss, capped so a diverged run reports inf, not an overflow."""
    return math.exp(mean_loss) if mean_loss < 700 else math.inf


def bleu(generations: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) of generations against one reference each."""
    import sacrebleu

    if not generations:
        return 0.0
    return float(sacrebleu.corpus_bleu(generations, [references]).score)

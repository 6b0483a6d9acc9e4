"""Validation metrics besides the loss: perplexity, and scores of generated text against one
reference each: BLEU and chrF (sacrebleu), ROUGE-1/2/L (rouge-score)."""

from __future__ import annotations

import math

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def perplexity(mean_loss: float) -> float:
    """exp of the token-averaged loss, capped so a diverged run reports inf, not an overflow."""
    return math.exp(mean_loss) if mean_loss < 700 else math.inf


def bleu(generations: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) of generations against one reference each."""
    import sacrebleu

    if not generations:
        return 0.0
    return float(sacrebleu.corpus_bleu(generations, [references]).score)


def exact_matches(generations: list[str], references: list[str]) -> int:
    """How many generations equal their reference once both are stripped of surrounding
    whitespace (causal_lm's exact_match: '247 of 300 exact')."""
    return sum(g.strip() == r.strip() for g, r in zip(generations, references, strict=True))


def chrf(generations: list[str], references: list[str]) -> float:
    """Corpus chrF (0-100), sacrebleu's character n-gram F-score."""
    import sacrebleu

    if not generations:
        return 0.0
    return float(sacrebleu.corpus_chrf(generations, [references]).score)


def rouge(generations: list[str], references: list[str]) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L: rouge-score's F-measure of each pair (Porter stemming, as
    transformers' run_summarization), averaged over the pairs, times 100 (BLEU's scale)."""
    from rouge_score import rouge_scorer

    if not generations:
        return dict.fromkeys(ROUGE_TYPES, 0.0)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(ref, gen) for gen, ref in zip(generations, references)]
    return {name: 100 * sum(s[name].fmeasure for s in scores) / len(scores)
            for name in ROUGE_TYPES}


def text_scores(generations: list[str], references: list[str]) -> dict[str, float]:
    """Every text metric of generations against their references (seq2seq's eval fields)."""
    return {**rouge(generations, references), "bleu": bleu(generations, references),
            "chrf": chrf(generations, references)}

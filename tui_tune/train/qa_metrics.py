"""SQuAD's exact match and F1 for extractive question answering.

No maintained implementation is installed offline (`evaluate` is not in the environment and
`datasets` 5 ships no metric scripts), so this is the official SQuAD v2.0 evaluation script's
normalisation and scoring, written out as that script has them (normalize_answer, get_tokens,
compute_exact, compute_f1, and the best score over the gold answers, an empty gold meaning "no
answer"). The script prints percentages; these are fractions (0..1), as the app's other
scores are. tests/test_qa_metrics.py checks them on hand-worked SQuAD examples.
"""

from __future__ import annotations

import collections
import re
import string

ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the script's order:
    lower, punctuation, articles, whitespace)."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact(gold: str, predicted: str) -> float:
    return float(normalize_answer(gold) == normalize_answer(predicted))


def f1(gold: str, predicted: str) -> float:
    gold_tokens, predicted_tokens = answer_tokens(gold), answer_tokens(predicted)
    if not gold_tokens or not predicted_tokens:
        # either is no-answer: 1 if they agree, 0 otherwise
        return float(gold_tokens == predicted_tokens)
    same = sum((collections.Counter(gold_tokens) & collections.Counter(predicted_tokens))
               .values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def best_scores(golds: list[str], predicted: str) -> tuple[float, float]:
    """(exact match, F1) of one question: the best over its gold answers; golds that normalise
    to nothing are dropped, and none left means the question has no answer ("")."""
    golds = [g for g in golds if normalize_answer(g)] or [""]
    return (max(exact(g, predicted) for g in golds), max(f1(g, predicted) for g in golds))


def squad_scores(golds: list[list[str]], predicted: list[str]) -> dict[str, float]:
    """{"exact_match", "f1"}: the means over the questions (0.0 for none)."""
    scores = [best_scores(g, p) for g, p in zip(golds, predicted, strict=True)]
    if not scores:
        return {"exact_match": 0.0, "f1": 0.0}
    return {"exact_match": sum(s[0] for s in scores) / len(scores),
            "f1": sum(s[1] for s in scores) / len(scores)}

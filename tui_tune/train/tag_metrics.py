"""Token classification metrics over word-level tags, from seqeval and scikit-learn.

Entity tags (BIO, IOB, IOBES or BILOU: every tag is O or a prefix such as B- and a type) are
judged as named-entity recognition is: entity-level precision, recall and F1 from seqeval
(conlleval's rules: an entity counts only when its type and every word of its span are right).
Other tag sets (part of speech, plain ids) have no entities, so there precision, recall and
F1 are scikit-learn's macro averages over the tags (each tag weighs the same; the micro
average would only repeat accuracy, since every word has exactly one tag). Accuracy is the
fraction of words tagged right, in both cases.
"""

from __future__ import annotations

import re

ENTITY_TAG = re.compile(r"^[BIESLU]-.+")


def entity_tags(labels: list[str]) -> bool:
    """Whether the label set is an entity scheme that seqeval reads (some B-X style tag, and
    nothing but those and O)."""
    return any(ENTITY_TAG.match(t) for t in labels) and \
        all(t == "O" or ENTITY_TAG.match(t) for t in labels)


def tag_scores(truth: list[list[str]], predicted: list[list[str]],
               entities: bool) -> dict[str, float]:
    """precision, recall, f1 and accuracy of predicted tag sequences against the truth (one
    list of tags per row, word-aligned)."""
    from seqeval.metrics import accuracy_score

    accuracy = float(accuracy_score(truth, predicted)) if any(truth) else 0.0
    if entities:
        from seqeval.metrics import f1_score, precision_score, recall_score

        scores = [float(score(truth, predicted, zero_division=0))
                  for score in (precision_score, recall_score, f1_score)]
    else:
        from sklearn.metrics import precision_recall_fscore_support

        flat_truth = [t for row in truth for t in row]
        flat_predicted = [p for row in predicted for p in row]
        scores = [float(s) for s in precision_recall_fscore_support(
            flat_truth, flat_predicted, average="macro", zero_division=0)[:3]] \
            if flat_truth else [0.0, 0.0, 0.0]
    return dict(zip(("precision", "recall", "f1"), scores), accuracy=accuracy)

"""SQuAD's exact match and F1 (train/qa_metrics.py) on SQuAD answers worked out by hand with
the official v2.0 script's definitions."""

from __future__ import annotations

import pytest

from tui_tune.train.qa_metrics import best_scores, f1, normalize_answer, squad_scores


def test_normalisation_lowers_and_drops_punctuation_articles_and_extra_spaces():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("Levi's Stadium") == "levis stadium"  # the apostrophe goes
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("theatre") == "theatre"  # an article only as a whole word
    assert normalize_answer("A.") == ""  # punctuation first, then "a" is an article


@pytest.mark.parametrize(("gold", "predicted", "exact", "f1_score"), [
    # Super Bowl 50 (SQuAD dev): "Which NFL team represented the AFC at Super Bowl 50?"
    ("Denver Broncos", "the Denver Broncos", 1.0, 1.0),
    ("Denver Broncos", "Broncos", 0.0, 2 / 3),  # p 1, r 1/2
    # "Where did Super Bowl 50 take place?": common {santa, clara}; p 2/5, r 2/3 -> F1 1/2
    ("Santa Clara, California", "Levi's Stadium in Santa Clara", 0.0, 0.5),
    ("1976", "1976", 1.0, 1.0),
    ("gold", "golden anniversary", 0.0, 0.0),
    # SQuAD v2 unanswerable: an empty gold is only matched by an empty prediction
    ("", "", 1.0, 1.0),
    ("", "Carolina Panthers", 0.0, 0.0),
    ("Carolina Panthers", "", 0.0, 0.0),
])
def test_exact_match_and_f1_of_one_answer(gold, predicted, exact, f1_score):
    assert best_scores([gold], predicted) == (exact, pytest.approx(f1_score))


def test_the_best_gold_answer_counts_and_empty_golds_mean_no_answer():
    # SQuAD dev lists several answers per question; the best match is the score
    assert best_scores(["Santa Clara, California", "Levi's Stadium",
                        "Levi's Stadium in the San Francisco Bay Area at Santa Clara"],
                       "Levi's Stadium") == (1.0, 1.0)
    assert best_scores(["", "  "], "") == (1.0, 1.0)  # golds that normalise to nothing
    assert f1("a b c", "a a b") == pytest.approx(2 / 3)  # "a" is an article: {b, c} vs {b}


def test_the_scores_are_means_over_questions():
    scores = squad_scores([["Denver Broncos"], ["1976"], [""], ["Santa Clara"]],
                          ["Broncos", "1976", "", "Paris"])
    assert scores["exact_match"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)
    assert squad_scores([], []) == {"exact_match": 0.0, "f1": 0.0}

"""Learnable demo data for classification and regression (written by `tui-tune demo prepare`).

sentiment.jsonl: short reviews whose words say the class: `label` is negative / neutral /
positive (label texts), `positive` is 0/1 (binary), `food` and `music` are 0/1 flags of what
the review is about (multilabel). weather.jsonl: two temperature words, `target` is their
mean on a 0 (freezing) to 5 (hot) scale. Both from fixed seeds, byte-level tokenized by the
demo tokenizer like any text.
"""

from __future__ import annotations

import random

SEED = 4321
WORDS = {"negative": ["awful", "boring", "terrible", "dull", "bad"],
         "neutral": ["long", "new", "late", "short", "early"],
         "positive": ["great", "wonderful", "lovely", "excellent", "fun"]}
SUBJECTS = {"the dinner": (1, 0), "the pizza": (1, 0), "the song": (0, 1),
            "the concert": (0, 1), "the dinner party with a band": (1, 1), "the trip": (0, 0),
            "the game": (0, 0)}
TEMPERATURES = ["freezing", "cold", "cool", "mild", "warm", "hot"]


def review_row(rng: random.Random) -> dict:
    label = rng.choice(sorted(WORDS))
    subject = rng.choice(sorted(SUBJECTS))
    first, second = rng.sample(WORDS[label], 2)
    food, music = SUBJECTS[subject]
    return {"text": f"{subject} was {first} and {second}", "label": label,
            "positive": int(label == "positive"), "food": food, "music": music}


def weather_row(rng: random.Random) -> dict:
    morning, evening = rng.randrange(6), rng.randrange(6)
    return {"text": f"the morning was {TEMPERATURES[morning]}, the evening was "
                    f"{TEMPERATURES[evening]}", "target": (morning + evening) / 2}


def label_datasets(rows: int = 2000, seed: int = SEED) -> dict[str, list[dict]]:
    """File name -> rows."""
    rng = random.Random(seed)
    return {"sentiment.jsonl": [review_row(rng) for _ in range(rows)],
            "weather.jsonl": [weather_row(rng) for _ in range(rows)]}

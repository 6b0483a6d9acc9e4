"""Learnable demo data for extractive question answering (qa.jsonl, written by `tui-tune demo
prepare`): a context of short sentences about who owns what ("Anna owns a red car.", each thing
named once), and a question whose answer is a piece of it: "Who owns the car?" -> "Anna", "What colour is the
car?" -> "red". Some contexts are long enough to need several windows at the demo's
max_length; about one question in seven asks about a thing no sentence names and has no
answer (an empty `answer`, as SQuAD v2). `answer_start` is the answer's offset in characters.
From a fixed seed.
"""

from __future__ import annotations

import random

SEED = 5678
# words the demo encoder's small vocabulary cuts into few pieces
OWNERS = ["Anna", "Elena", "Farid", "Ingrid", "Lucas", "Mei", "Oscar", "Rosa", "Ulla", "Zoe"]
COLOURS = ["red", "green", "pink", "grey"]
THINGS = ["hat", "car", "cup", "pen", "boat", "letter", "lamp"]
VERBS = ["owns", "has", "bought"]
NO_ANSWER = 1 / 7


def qa_row(rng: random.Random) -> dict:
    """One context of 2 to 6 sentences (each its own owner, colour and thing) and one question
    about it."""
    count = rng.randint(2, len(THINGS) - 1)
    owners, things = rng.sample(OWNERS, count), rng.sample(THINGS, count + 1)
    sentences, where = [], []
    for owner, thing in zip(owners, things):
        colour = rng.choice(COLOURS)
        start = sum(len(s) + 1 for s in sentences)
        sentences.append(f"{owner} {rng.choice(VERBS)} a {colour} {thing}.")
        where.append((owner, colour, thing, start))
    context = " ".join(sentences)
    if rng.random() < NO_ANSWER:  # a thing no sentence names
        return {"question": f"Who owns the {things[-1]}?",
                "context": context, "answer": "", "answer_start": -1}
    owner, colour, thing, start = rng.choice(where)
    if rng.random() < 0.5:
        question, answer, at = f"Who owns the {thing}?", owner, start
    else:
        question, answer = f"What colour is the {thing}?", colour
        at = context.index(f" {colour} {thing}.", start) + 1
    assert context[at:at + len(answer)] == answer
    return {"question": question, "context": context, "answer": answer, "answer_start": at}


def qa_rows(count: int = 2000, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    return [qa_row(rng) for _ in range(count)]

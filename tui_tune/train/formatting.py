"""Rows -> token ids and labels: text markers or the chat template, chained turns, masking.

Each example is cut into pieces (text, learn-from-it flag) so the labels of prompt tokens can be
masked exactly, whatever the tokenizer merges across piece borders would have done.
Truncation follows H2O LLM Studio: the training sequence and the generation prompt are cut
separately, so a long answer never leaves generation without its prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

IGNORE_INDEX = -100


@dataclass
class Turn:
    prompt: str
    answer: str


@dataclass
class Conversation:
    system: str
    turns: list[Turn]  # earlier turns first; the last one is the example's own


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    prompt_length: int  # training tokens before the final answer (after truncation)
    prompt_ids: list[int] = field(default_factory=list)  # what generation is given
    prompt_text: str = ""
    answer_text: str = ""
    prompt_cut: int = 0  # system / history / prompt tokens the training sequence lost
    answer_cut: int = 0  # final-answer tokens the training sequence lost
    generation_cut: int = 0  # tokens the generation prompt lost (it keeps its end)
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


def prompt_of(row: dict[str, Any], columns: list[str], separator: str) -> str:
    return separator.join(str(row[c]) for c in columns if row.get(c) is not None)


def build_conversations(rows: list[dict[str, Any]], ds,
                        lookup: list[dict[str, Any]] | None = None,
                        augment: tuple[float, float, Any] | None = None) -> list[Conversation]:
    """One conversation per row; with parent_id_column, earlier turns are followed up the chain
    through `lookup` (all rows of the file, so a split never cuts a history).

    `augment` = (skip_parent_probability, random_parent_probability, random.Random): earlier
    turns are dropped, or replaced by a random row, with those chances (training rows only).
    """
    pool = lookup or rows
    by_id = {str(r[ds.id_column]): r for r in pool} if ds.parent_id_column else {}
    out = []
    for row in conversation_ends(rows, ds, pool):
        chain = [row] + _ancestors(row, ds, by_id, pool, augment)
        chain.reverse()
        system = str(chain[0].get(ds.system_column) or "") if ds.system_column else ""
        turns = [Turn(prompt_of(r, ds.prompt_columns, ds.prompt_column_separator),
                      str(r[ds.answer_column])) for r in chain]
        out.append(Conversation(system, turns))
    return out


def conversation_ends(rows: list[dict[str, Any]], ds,
                      pool: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """With limit_chained_samples (as in H2O), only rows that no row of the file continues
    become examples, each with its whole history; otherwise every row is one (a conversation
    of n turns gives n examples, the first turns on their own too)."""
    if not (ds.parent_id_column and ds.limit_chained_samples):
        return rows
    continued = {str(r[ds.parent_id_column]) for r in pool
                 if r.get(ds.parent_id_column) not in (None, "")}
    return [r for r in rows if str(r[ds.id_column]) not in continued]


def _ancestors(row, ds, by_id, pool, augment) -> list[dict[str, Any]]:
    found, seen, node = [], set(), row
    skip_p, random_p, rng = augment or (0.0, 0.0, None)
    while ds.parent_id_column and node.get(ds.parent_id_column) not in (None, ""):
        parent_id = str(node[ds.parent_id_column])
        if parent_id in seen or parent_id not in by_id:
            break  # cycles and dangling parents end the chain
        seen.add(parent_id)
        node = by_id[parent_id]
        if rng is not None and rng.random() < random_p:
            found.append(rng.choice(pool))
            break
        if rng is None or rng.random() >= skip_p:
            found.append(node)
    return found


def learns(ds, last: bool) -> tuple[bool, bool]:
    """Whether a turn's (prompt, answer) tokens are learned. With mask_prompt_labels only
    answers are, every one of them (H2O's default) or only the last (only_last_answer)."""
    if not ds.mask_prompt_labels:
        return True, True
    return False, last or not ds.only_last_answer


def text_pieces(conv: Conversation, ds, tokenizer) -> list[tuple[str, bool]]:
    """Pieces with the dataset's text markers: [system] then prompt / separator / answer."""
    eos = tokenizer.eos_token or ""
    pieces: list[tuple[str, bool]] = []
    head = tokenizer.bos_token or ""
    if conv.system:
        head += ds.text_system_start + conv.system + (eos if ds.add_eos_to_system else "")
    for n, turn in enumerate(conv.turns):
        prompt = head + ds.text_prompt_start + turn.prompt
        prompt += (eos if ds.add_eos_to_prompt else "") + ds.text_answer_separator
        answer = turn.answer + (eos if ds.add_eos_to_answer else "")
        learn_prompt, learn_answer = learns(ds, n == len(conv.turns) - 1)
        pieces += [(prompt, learn_prompt), (answer, learn_answer)]
        head = ""
    return pieces


def marker_chat_template(ds, tokenizer) -> str:
    """A jinja chat template that writes exactly what text_pieces writes, so a model trained
    with text markers is prompted the same way downstream (H2O's export does the same).
    The texts are baked in as literals: a tokenizer without a BOS token must not print None."""
    eos = tokenizer.eos_token or ""
    system_end = eos if ds.add_eos_to_system else ""
    prompt_end = (eos if ds.add_eos_to_prompt else "") + ds.text_answer_separator
    answer_end = eos if ds.add_eos_to_answer else ""
    return (
        "{{ " + _jinja_text(tokenizer.bos_token or "") + " }}"
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{% if message['content'] %}"
        "{{ " + _jinja_text(ds.text_system_start) + " + message['content'] + "
        + _jinja_text(system_end) + " }}{% endif %}"
        "{% elif message['role'] == 'user' %}"
        "{{ " + _jinja_text(ds.text_prompt_start) + " + message['content'] + "
        + _jinja_text(prompt_end) + " }}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ message['content'] + " + _jinja_text(answer_end) + " }}"
        "{% else %}{{ raise_exception('only system, user and assistant messages were "
        "trained') }}{% endif %}{% endfor %}")


def _jinja_text(text: str) -> str:
    """A jinja string literal for any text (jinja reads backslash escapes as Python does)."""
    return json.dumps(text, ensure_ascii=False)


def chat_pieces(conv: Conversation, ds, tokenizer) -> list[tuple[str, bool]]:
    """Pieces from the tokenizer's chat template; each answer is the text the template adds."""
    messages = [{"role": "system", "content": conv.system}] if conv.system else []
    pieces: list[tuple[str, bool]] = []
    done = ""
    for n, turn in enumerate(conv.turns):
        messages.append({"role": "user", "content": turn.prompt})
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                               tokenize=False)
        messages.append({"role": "assistant", "content": turn.answer})
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ValueError("the chat template does not extend its output turn by turn")
        answer = full[len(prompt):]
        if ds.add_eos_to_answer and tokenizer.eos_token and tokenizer.eos_token not in answer:
            answer += tokenizer.eos_token
        learn_prompt, learn_answer = learns(ds, n == len(conv.turns) - 1)
        pieces += [(prompt[len(done):], learn_prompt), (answer, learn_answer)]
        done = prompt + answer
    return pieces


def tokenize_conversations(convs: list[Conversation], ds, tokenizer, max_length: int,
                           truncation_side: str = "left") -> list[Example]:
    make_pieces = chat_pieces if ds.use_chat_template else text_pieces
    all_pieces = [make_pieces(c, ds, tokenizer) for c in convs]
    flat = [text for pieces in all_pieces for text, _ in pieces]
    ids = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
    examples, k = [], 0
    for conv, pieces in zip(convs, all_pieces):
        parts = [(ids[k + i], learn) for i, (_, learn) in enumerate(pieces)]
        k += len(pieces)
        examples.append(assemble(parts, max_length, conv, truncation_side))
    return examples


def assemble(parts: list[tuple[list[int], bool]], max_length: int, conv: Conversation,
             truncation_side: str = "left") -> Example:
    """Join the pieces (the last one is the final answer) and cut to max_length.

    left (H2O): the sequence keeps its end, so system, history and prompt go first; an answer
    longer than max_length on its own keeps its first max_length tokens (H2O cuts every
    answer so). right: the sequence keeps its start, the answer loses its end.
    The generation prompt is everything before the final answer, its last max_length tokens,
    whatever the training sequence kept of it.
    """
    prompt_ids = [t for p, _ in parts[:-1] for t in p]
    prompt_labels = [t if learn else IGNORE_INDEX for p, learn in parts[:-1] for t in p]
    answer_ids = parts[-1][0]
    if truncation_side == "left":
        kept = min(len(prompt_ids), max(max_length - len(answer_ids), 0))
        start = len(prompt_ids) - kept
        prompt_part, label_part = prompt_ids[start:], prompt_labels[start:]
    else:
        prompt_part, label_part = prompt_ids[:max_length], prompt_labels[:max_length]
    answer_part = answer_ids[:max_length - len(prompt_part)]
    generation = prompt_ids[max(len(prompt_ids) - max_length, 0):]
    return Example(input_ids=prompt_part + answer_part, labels=label_part + list(answer_part),
                   prompt_length=len(prompt_part), prompt_ids=generation,
                   prompt_text=conv.turns[-1].prompt, answer_text=conv.turns[-1].answer,
                   prompt_cut=len(prompt_ids) - len(prompt_part),
                   answer_cut=len(answer_ids) - len(answer_part),
                   generation_cut=len(prompt_ids) - len(generation))


def truncation_note(train: list[Example], val: list[Example], max_length: int,
                    side: str) -> str | None:
    """What tokenizer.max_length cut, in one line: H2O cuts silently, and a prompt cut to
    nothing is otherwise only seen in odd samples."""
    cut_train = sum(1 for e in train if e.prompt_cut or e.answer_cut)
    cut_val = sum(1 for e in val if e.prompt_cut or e.answer_cut)
    if not cut_train + cut_val:
        return None
    cut = [e for e in train + val if e.prompt_cut or e.answer_cut]
    how = ("the beginning goes first: system, earlier turns, then the prompt" if side == "left"
           else "the end goes first: the answer, then the prompt")
    head = (f"tokenizer.max_length = {max_length} cut {cut_train} of {len(train)} training "
            f"and {cut_val} of {len(val)} validation examples (truncation_side = {side}: {how})")
    parts = [head]
    no_prompt = sum(1 for e in cut if e.prompt_length == 0)
    if no_prompt:
        parts.append(f"{no_prompt} kept only answer tokens")
    no_answer = sum(1 for e in cut if e.answer_cut and e.prompt_length == len(e.input_ids))
    short = sum(1 for e in cut if e.answer_cut) - no_answer
    if short:
        parts.append(f"{short} lost the end of their answer")
    if no_answer:
        parts.append(f"{no_answer} kept no answer token (nothing to learn)")
    generation = sum(1 for e in val if e.generation_cut)
    if generation:
        parts.append(f"{generation} validation prompts are given to generation as their last "
                     f"{max_length} tokens")
    return "; ".join(parts) + "."

"""Rows -> token ids and labels: text markers or the chat template, chained turns, masking.

Each example is cut into pieces (text, learn-from-it flag) so the labels of prompt tokens can be
masked exactly, whatever the tokenizer merges across piece borders would have done.
"""

from __future__ import annotations

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
    prompt_length: int  # tokens before the final answer: what generation is given
    prompt_text: str = ""
    answer_text: str = ""
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
    for row in rows:
        chain = [row] + _ancestors(row, ds, by_id, pool, augment)
        chain.reverse()
        system = str(chain[0].get(ds.system_column) or "") if ds.system_column else ""
        turns = [Turn(prompt_of(r, ds.prompt_columns, ds.prompt_column_separator),
                      str(r[ds.answer_column])) for r in chain]
        out.append(Conversation(system, turns))
    return out


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


def text_pieces(conv: Conversation, ds, tokenizer) -> list[tuple[str, bool]]:
    """Pieces with the dataset's text markers: [system] then prompt / separator / answer."""
    eos = tokenizer.eos_token or ""
    pieces: list[tuple[str, bool]] = []
    head = tokenizer.bos_token or ""
    if conv.system:
        head += ds.text_system_start + conv.system
    for n, turn in enumerate(conv.turns):
        last = n == len(conv.turns) - 1
        prompt = head + ds.text_prompt_start + turn.prompt
        prompt += (eos if ds.add_eos_to_prompt else "") + ds.text_answer_separator
        answer = turn.answer + (eos if ds.add_eos_to_answer else "")
        pieces += [(prompt, False), (answer, last or not ds.mask_prompt_labels)]
        head = ""
    return pieces


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
        last = n == len(conv.turns) - 1
        pieces += [(prompt[len(done):], False), (answer, last or not ds.mask_prompt_labels)]
        done = prompt + answer
    return pieces


def tokenize_conversations(convs: list[Conversation], ds, tokenizer,
                           max_length: int) -> list[Example]:
    make_pieces = chat_pieces if ds.use_chat_template else text_pieces
    all_pieces = [make_pieces(c, ds, tokenizer) for c in convs]
    flat = [text for pieces in all_pieces for text, _ in pieces]
    ids = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
    examples, k = [], 0
    for conv, pieces in zip(convs, all_pieces):
        parts = [(ids[k + i], learn) for i, (_, learn) in enumerate(pieces)]
        k += len(pieces)
        examples.append(assemble(parts, max_length, ds.mask_prompt_labels, conv))
    return examples


def assemble(parts: list[tuple[list[int], bool]], max_length: int, mask_prompt: bool,
             conv: Conversation) -> Example:
    """Join the pieces; too long: cut the prompt from the left first, then the answer's end."""
    prompt_ids = [t for p, _ in parts[:-1] for t in p]
    prompt_labels = [t if (learn or not mask_prompt) else IGNORE_INDEX
                     for p, learn in parts[:-1] for t in p]
    answer_ids = parts[-1][0]
    overflow = len(prompt_ids) + len(answer_ids) - max_length
    if overflow > 0:
        cut = min(overflow, len(prompt_ids))
        prompt_ids, prompt_labels = prompt_ids[cut:], prompt_labels[cut:]
        answer_ids = answer_ids[:max_length - len(prompt_ids)]
    return Example(input_ids=prompt_ids + answer_ids, labels=prompt_labels + list(answer_ids),
                   prompt_length=len(prompt_ids), prompt_text=conv.turns[-1].prompt,
                   answer_text=conv.turns[-1].answer)

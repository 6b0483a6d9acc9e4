"""The first rows of the training file as a causal LM will see them (issue 20): the layout
told (dataset.format), the text markers or the chat template applied, which parts are learned
and which are masked, token lengths against tokenizer.max_length, and the rows that would be
cut or dropped. Light: tokens come from the `tokenizers` package and the backbone's
tokenizer.json (no transformers), else from characters, and the method says which.

The text is built as train/formatting.py builds it (text_pieces, chat_pieces, assemble);
tests/test_data_preview.py checks that the two agree.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tune.runs import layouts
from tui_tune.runs.datafiles import DataFileError
from tui_tune.runs.datasource import iter_source_rows

ROWS_READ = 2000  # the histogram's rows: the first ones, so a huge file costs no more
CHARS_PER_TOKEN = 4.0
_tokenizers: dict[tuple, Any] = {}


class PreviewError(Exception):
    """The training file cannot be read (the message names it)."""


@dataclass
class Example:
    row: int  # the row number in the file (1-based)
    pieces: list[tuple[str, bool]]  # (text, learned); the last is the final answer
    prompt_tokens: int
    answer_tokens: int
    max_length: int
    side: str

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.answer_tokens

    @property
    def cut(self) -> bool:
        return self.tokens > self.max_length

    @property
    def learns_nothing(self) -> bool:
        """After the cut no answer token is left (truncation_side right, long prompt)."""
        if self.answer_tokens == 0:
            return True
        return self.side == "right" and self.prompt_tokens >= self.max_length


@dataclass
class DataPreview:
    file: str
    layout: str
    layout_text: str
    token_method: str
    max_length: int
    rows_read: int
    complete: bool  # every row of the file was read
    examples: list[Example] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # rows the layout or columns reject
    template_note: str = ""

    @property
    def lengths(self) -> list[int]:
        return [e.tokens for e in self.examples]

    @property
    def cut(self) -> int:
        return sum(e.cut for e in self.examples)

    @property
    def learn_nothing(self) -> int:
        return sum(e.learns_nothing for e in self.examples)


@dataclass
class Markup:
    """What the pieces are made of: the marker settings and the tokenizer's special texts."""

    bos: str = ""
    eos: str = ""
    chat_template: str | None = None


def preview(exp, rows_read: int = ROWS_READ) -> DataPreview:
    """The preview of exp's training file (PreviewError when it cannot be read)."""
    ds, tok = exp.dataset, exp.tokenizer
    try:
        raw = list(itertools.islice(iter_source_rows(ds.train_file, "dataset.train_file", ds),
                                    rows_read + 1))
    except DataFileError as error:  # NeedsWorker too: a hub dataset not downloaded here
        raise PreviewError(f"dataset.train_file {ds.train_file}: {error}") from error
    complete = len(raw) <= rows_read
    raw = raw[:rows_read]
    if not raw:
        raise PreviewError(f"dataset.train_file {ds.train_file} has no rows.")
    layout = layouts.detect_format(raw[0], ds)
    how = layouts.DESCRIPTION[layout]
    layout_text = f"{ds.format}: {how}" if ds.format != "auto" else f"auto -> {layout} ({how})"
    folder = _backbone_folder(exp)
    markup, note = special_texts(folder, ds.use_chat_template)
    encode, method = token_counter(folder)
    out = DataPreview(ds.train_file, layout, layout_text, method, tok.max_length, len(raw),
                      complete, template_note=note)
    rows, numbers = _canonical_rows(raw, layout, ds, out.dropped)
    ds_read = layouts.layout_dataset(ds, layout)
    all_pieces = []
    for number, chain in conversations(rows, numbers, ds_read, out.dropped):
        try:
            all_pieces.append((number, pieces_of(chain, ds_read, markup)))
        except TemplateFailure as error:
            out.template_note = str(error)
            markup.chat_template = None
            all_pieces.append((number, pieces_of(chain, ds_read, markup)))
    flat = [text for _, pieces in all_pieces for text, _ in pieces]
    counts = iter(encode(flat))
    for number, pieces in all_pieces:
        lengths = [next(counts) for _ in pieces]
        out.examples.append(Example(number, pieces, sum(lengths[:-1]), lengths[-1],
                                    tok.max_length, tok.truncation_side))
    return out


def _backbone_folder(exp) -> Path | None:
    from tui_tune.runs.estimate.shape import ShapeError, backbone_folder

    try:
        return backbone_folder(exp.general.backbone, exp.general.revision)
    except ShapeError:
        return None


def _canonical_rows(raw, layout: str, ds, dropped: list[str]):
    """The rows as prompt/answer rows (a layout's rows converted), and each one's row number
    in the file; rows the layout rejects go to `dropped` with the reason."""
    if layout == layouts.COLUMNS:
        return raw, list(range(1, len(raw) + 1))
    rows, numbers = [], []
    for number, row in enumerate(raw, 1):
        problem = layouts.check_row(number, row, layout)
        if problem:
            dropped.append(problem)
            continue
        converted = layouts.to_rows([row], layout, ds.prompt_column_separator, f"{number}:")
        rows += converted
        numbers += [number] * len(converted)
    return rows, numbers


def conversations(rows, numbers, ds, dropped: list[str]):
    """(row number, [earlier rows..., row]) per example, as train/formatting.py chains them
    (the chain followed through the rows read; limit_chained_samples keeps the last turns)."""
    by_id = {str(r.get(ds.id_column)): r for r in rows} if ds.parent_id_column else {}
    continued = {str(r.get(ds.parent_id_column)) for r in rows
                 if ds.parent_id_column and r.get(ds.parent_id_column) not in (None, "")}
    for number, row in zip(numbers, rows):
        missing = [c for c in (*ds.prompt_columns, ds.answer_column) if c not in row]
        if missing:
            dropped.append(f"row {number}: no column {', '.join(map(repr, missing))}")
            continue
        if ds.parent_id_column and ds.limit_chained_samples \
                and str(row.get(ds.id_column)) in continued:
            continue
        chain, seen, node = [row], set(), row
        while ds.parent_id_column and node.get(ds.parent_id_column) not in (None, ""):
            parent = str(node[ds.parent_id_column])
            if parent in seen or parent not in by_id:
                break
            seen.add(parent)
            node = by_id[parent]
            chain.append(node)
        yield number, chain[::-1]


class TemplateFailure(Exception):
    """The chat template cannot be rendered here; the message says what is shown instead."""


def learns(ds, last: bool) -> tuple[bool, bool]:
    if not ds.mask_prompt_labels:
        return True, True
    return False, last or not ds.only_last_answer


def turns_of(chain, ds) -> tuple[str, list[tuple[str, str]]]:
    system = str(chain[0].get(ds.system_column) or "") if ds.system_column else ""
    turns = [(ds.prompt_column_separator.join(str(r[c]) for c in ds.prompt_columns
                                              if r.get(c) is not None),
              str(r[ds.answer_column])) for r in chain]
    return system, turns


def pieces_of(chain, ds, markup: Markup) -> list[tuple[str, bool]]:
    system, turns = turns_of(chain, ds)
    if markup.chat_template:
        return _chat_pieces(system, turns, ds, markup)
    pieces: list[tuple[str, bool]] = []
    head = markup.bos
    if system:
        head += ds.text_system_start + system + (markup.eos if ds.add_eos_to_system else "")
    for n, (prompt, answer) in enumerate(turns):
        text = head + ds.text_prompt_start + prompt
        text += (markup.eos if ds.add_eos_to_prompt else "") + ds.text_answer_separator
        learn_prompt, learn_answer = learns(ds, n == len(turns) - 1)
        pieces += [(text, learn_prompt),
                   (answer + (markup.eos if ds.add_eos_to_answer else ""), learn_answer)]
        head = ""
    return pieces


def _chat_pieces(system: str, turns, ds, markup: Markup) -> list[tuple[str, bool]]:
    messages = [{"role": "system", "content": system}] if system else []
    pieces: list[tuple[str, bool]] = []
    done = ""
    for n, (prompt, answer) in enumerate(turns):
        messages.append({"role": "user", "content": prompt})
        before = render_template(markup, messages, True)
        messages.append({"role": "assistant", "content": answer})
        full = render_template(markup, messages, False)
        if not (before.startswith(done) and full.startswith(before)):
            raise TemplateFailure("the chat template does not extend its output turn by turn: "
                                  "shown with the text markers (the worker refuses it)")
        said = full[len(before):]
        if ds.add_eos_to_answer and markup.eos and markup.eos not in said:
            said += markup.eos
        learn_prompt, learn_answer = learns(ds, n == len(turns) - 1)
        pieces += [(before[len(done):], learn_prompt), (said, learn_answer)]
        done = before + said
    return pieces


def render_template(markup: Markup, messages, generation_prompt: bool) -> str:
    """The chat template rendered as transformers renders it (a sandboxed jinja2)."""
    try:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as error:  # jinja2 comes with the app's web server; just in case
        raise TemplateFailure("jinja2 is missing: shown with the text markers; the run's log "
                              "shows the chat template's text") from error

    def fail(message: str):
        raise TemplateError(message)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = fail
    try:
        return env.from_string(markup.chat_template or "").render(
            messages=messages, add_generation_prompt=generation_prompt, bos_token=markup.bos,
            eos_token=markup.eos)
    except TemplateError as error:
        raise TemplateFailure(f"the chat template cannot be shown here ({error}): shown with "
                              "the text markers; the run's log shows the template's text") \
            from error


def special_texts(folder: Path | None, chat: bool) -> tuple[Markup, str]:
    """BOS/EOS texts and the chat template from tokenizer_config.json, and a note when the
    chat template is asked for but cannot be shown."""
    config: dict = {}
    if folder is not None:
        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
    template = config.get("chat_template") if chat else None
    if isinstance(template, list):  # named templates: the default one
        template = next((t.get("template") for t in template
                         if isinstance(t, dict) and t.get("name") == "default"), None)
    if folder is not None and chat and not template:
        jinja = folder / "chat_template.jinja"
        template = jinja.read_text(encoding="utf-8") if jinja.is_file() else None
    note = ""
    if chat and not isinstance(template, str):
        template = None
        note = ("no chat template found beside the backbone here: shown with the text "
                "markers; the run's log shows what the worker used")
    return Markup(_special(config.get("bos_token")), _special(config.get("eos_token")),
                  template), note


def _special(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def token_counter(folder: Path | None):
    """(texts -> token counts, the method in words): the backbone's tokenizer.json through
    `tokenizers`, else characters / 4."""
    path = folder / "tokenizer.json" if folder is not None else None
    if path is not None and path.is_file():
        try:
            tokenizer = _tokenizer(path)
        except Exception as error:  # noqa: BLE001 - a file tokenizers cannot load
            return _by_chars, (f"characters / {CHARS_PER_TOKEN:g} (estimated: {path.name} "
                               f"cannot be loaded: {error})")

        def encode(texts: list[str]) -> list[int]:
            if not texts:
                return []
            return [len(e.ids) for e in tokenizer.encode_batch(texts,
                                                               add_special_tokens=False)]
        return encode, f"tokens from {path}"
    where = "no tokenizer.json beside the backbone" if folder is not None else \
        "the backbone is not on this machine"
    return _by_chars, f"characters / {CHARS_PER_TOKEN:g}, estimated ({where})"


def _by_chars(texts: list[str]) -> list[int]:
    return [math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts]


def _tokenizer(path: Path):
    from tokenizers import Tokenizer

    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _tokenizers:
        _tokenizers.clear()
        _tokenizers[key] = Tokenizer.from_file(str(path))
    return _tokenizers[key]

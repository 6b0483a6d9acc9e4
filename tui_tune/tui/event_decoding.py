"""How the app decodes events.jsonl lines in bulk: one flat struct for every kind (RawEvent),
chunk by chunk, and the lean decoder for long runs of step lines (run_data folds the results
into columns; history_cache scans with the same kinds)."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from tui_tune.events import ENVELOPE, FIELDS, METRICS, Wire, reader_struct
from tui_tune.step_index import STEP_COLUMNS

NAN = math.nan
# the columns: the step number (x axis), every metric of the kind (events.METRICS), the time.
# A metric is NaN where the line holds null (a reading not taken: grad_norm with
# logging.log_grad_norm off; the step itself still counts), text, or nothing.
EVAL_COLUMNS = ("step", *METRICS["eval"], "t")
# what the monitor shows of the other kinds (run info, header, samples, log, end)
OTHER_FIELDS = ("metric", "confusion", "labels", "prompt", "generation", "reference",
                "predicted", "truth", "words", "probabilities", "level", "message",
                "status", "error_type", "traceback", "path", "reason", "run_id", "steps_total",
                "world_size", "devices", "params_total", "params_trainable", "train_rows",
                "val_rows", "method", "mem_estimate_gib", "environment", "context", "span", "truth_span",
                "judge_score", "judge_reason", "rejected", "completions", "exact_count",
                "exact_total", "images")
# one flat struct for every line: the numbers as events.Wire (NaN when absent), the rest as JSON
RawEvent = reader_struct("RawEvent", dict.fromkeys((*STEP_COLUMNS, *EVAL_COLUMNS)), OTHER_FIELDS,
                         texts=("kind",))
CHUNK_BYTES = 8 << 20
_DECODER = msgspec.json.Decoder(RawEvent)


def decode_chunk(data: bytes) -> list[RawEvent]:
    """Events of complete lines in `data`; lines that are not events are skipped."""
    try:
        return _DECODER.decode_lines(data)
    except msgspec.DecodeError:
        out = []
        for line in data.splitlines():
            if line.strip():
                try:
                    out.append(_DECODER.decode(line))
                except msgspec.DecodeError:
                    continue
        return out


# -- the lean decoder: a whole history without the all-purpose struct ----------------------
# Decoding into RawEvent (every field of every kind, ~85 slots) costs about twice as much as
# into a struct of the dozen keys a step line really has, and most of a long history is step
# lines. So a long read learns which step keys the file uses and decodes with a tagged union:
# step lines into a struct of exactly those keys (unknown keys refused, so no value is ever
# dropped: a chunk with a new key is decoded the general way and its keys learned), the
# other kinds into RawEvent's fields.
STEP_KEYS = tuple(dict.fromkeys((*ENVELOPE, *FIELDS["step"])).keys() - {"kind"})
_GENERAL_FIELDS = [f for f in msgspec.structs.fields(RawEvent) if f.name != "kind"]
OTHER_KINDS = tuple(
    msgspec.defstruct(f"Raw{kind.title()}", [(f.name, f.type, f.default) for f in _GENERAL_FIELDS],
                      tag=kind, tag_field="kind", namespace={"kind": kind}, gc=False,
                      module=__name__)
    for kind in FIELDS if kind != "step")


class LeanDecoder:
    """decode(chunk) like decode_chunk, faster on long runs of step lines (see above)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self._decoder: msgspec.json.Decoder | None = None
        self.lean = True  # off once a chunk fails for a reason learning keys cannot fix

    def decode(self, data: bytes) -> list:
        if self.lean and self._decoder is not None:
            try:
                return self._decoder.decode_lines(data)
            except msgspec.DecodeError:
                pass
        events = decode_chunk(data)
        if self.lean:
            self._learn(data)
        return events

    def _learn(self, data: bytes) -> None:
        """The step keys in `data` (a key named only inside a text costs one empty column)."""
        found = {key for key in STEP_KEYS if f'"{key}":'.encode() in data}
        if found <= self.keys:
            self.lean = False  # garbage, an unknown kind or a key of no known name
            return
        self.keys |= found
        numbers = [k for k in STEP_KEYS if k in self.keys and k in (*STEP_COLUMNS, "v")]
        others = [k for k in STEP_KEYS if k in self.keys and k not in numbers]
        step = msgspec.defstruct(
            "LeanStep", [(k, Wire, NAN) for k in numbers] + [(k, Any, None) for k in others],
            tag="step", tag_field="kind", namespace={"kind": "step"}, gc=False,
            forbid_unknown_fields=True, module=__name__)
        self._decoder = msgspec.json.Decoder(step | union_of(OTHER_KINDS))


def union_of(types: tuple[type, ...]) -> Any:
    union = types[0]
    for kind in types[1:]:
        union = union | kind
    return union

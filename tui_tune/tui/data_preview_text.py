"""The dataset preview in words: the layout, the counts, a token-length histogram against
max_length, and the first examples with their masked parts dimmed (rich Text, so the data's
own brackets are never read as markup)."""

from __future__ import annotations

from rich.text import Text

BINS = 8
BAR = 30
EXAMPLE_CHARS = 1500  # an example's text shown, at most


def histogram(lengths: list[int], max_length: int) -> list[tuple[str, int]]:
    """(label, count): BINS equal ranges up to max_length, then the rows longer than it."""
    width = max(1, -(-max_length // BINS))
    counts = [0] * (BINS + 1)
    for n in lengths:
        counts[BINS if n > max_length else min((max(n, 1) - 1) // width, BINS - 1)] += 1
    labels = [f"{k * width + 1:>6}-{min((k + 1) * width, max_length):<6}" for k in range(BINS)]
    return list(zip([*labels, f"{'>':>6} {max_length:<6}"], counts))


def preview_text(p, shown: int = 3) -> Text:
    out = Text()
    out.append("Format: ", "bold").append(f"{p.layout_text}\n")
    out.append("Tokens: ", "bold").append(f"{p.token_method}\n")
    if p.template_note:
        out.append(f"Chat template: {p.template_note}\n", "yellow")
    read = f"{p.rows_read:,} rows" + ("" if p.complete else " (the first ones)")
    out.append("Rows: ", "bold").append(f"{read} -> {len(p.examples):,} examples\n")
    cut_style = "yellow" if p.cut else ""
    out.append(f"{p.cut:,} longer than max_length {p.max_length} (cut from the "
               f"{p.examples[0].side if p.examples else 'left'})\n", cut_style)
    if p.learn_nothing:
        out.append(f"{p.learn_nothing:,} keep no answer token after the cut (nothing to "
                   "learn)\n", "red")
    out.append(f"{len(p.dropped):,} rows dropped" + (":" if p.dropped else "") + "\n",
               "red" if p.dropped else "")
    for reason in p.dropped[:5]:
        out.append(f"  • {reason}\n", "red")
    if len(p.dropped) > 5:
        out.append(f"  ... and {len(p.dropped) - 5} more\n", "red")
    out.append("\nToken lengths (prompt + answer)\n", "bold")
    bins = histogram(p.lengths, p.max_length)
    top = max((c for _, c in bins), default=0) or 1
    for n, (label, count) in enumerate(bins):
        style = "red" if n == BINS and count else ""
        bar = "█" * (round(BAR * count / top) if count else 0)
        out.append(f"{label} ").append(f"{bar:<{BAR}}", style or "cyan").append(f" {count:,}\n")
    out.append("\nFirst examples ", "bold").append("(dim: masked, not learned)\n", "dim")
    for e in p.examples[:shown]:
        out.append(f"── row {e.row}: {e.tokens} tokens"
                   + (" (cut)" if e.cut else "") + " ──\n", "bold")
        left = EXAMPLE_CHARS
        for text, learned in e.pieces:
            part = text[:left]
            out.append(part, "" if learned else "dim")
            left -= len(part)
            if left <= 0:
                out.append(" …", "dim")
                break
        out.append("\n")
    return out

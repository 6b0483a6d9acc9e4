"""The editor's estimate in words: one summary line that fits 80 columns, and the details
(breakdown, each GPU, the changes that make it fit, the ETA) for the side panel."""

from __future__ import annotations

from rich.markup import escape

from tui_tune.display import duration, fit_lines

SHORT_NAMES = {"autocast 16-bit copies": "autocast copies", "adapter weights": "adapter",
               "optimizer states": "optimizer", "logits and loss": "logits + loss",
               "allocator slack": "allocator"}


def verdict(result) -> tuple[str, bool | None]:
    """What the GPUs (or the GPU size given) say, in a few words; and fits (None: unknown)."""
    needed = result.memory.total_gib
    if result.gpus:
        bad = [g for g in result.gpus if g.verdict == "does not fit"]
        if not bad:
            where = f"GPU {result.gpus[0].index}" if len(result.gpus) == 1 else \
                f"all {len(result.gpus)} GPUs"
            return f"fits {where}", True
        g = bad[0]
        return f"too big for GPU {g.index} ({g.total_gib:.0f} GiB)", False
    if result.budget_gib is not None:
        fits = needed <= result.budget_gib
        return f"{'fits' if fits else 'too big for'} {result.budget_gib:g} GiB", fits
    return "no GPU here (F9: GPU size)", None


def eta_text(result) -> str:
    if result.time is None:
        return "ETA ?"
    fast, slow = result.time.seconds
    return f"ETA {duration(fast)}-{duration(slow)}"


def summary_line(result) -> str:
    """One line (markup), at most about 76 characters."""
    words, fits = verdict(result)
    colour = {True: "green", False: "red", None: "yellow"}[fits]
    return (f"[b]Memory {result.memory.total_gib:.1f} GiB/GPU[/b] · [{colour}]{escape(words)}"
            f"[/{colour}] · {eta_text(result)} · F4 details")


def problem_line(message: str) -> str:
    return f"[b]Estimate:[/b] [yellow]{escape(message)}[/yellow]"


def detail_text(result) -> str:
    """The side panel's estimate: the breakdown, then what fits, then the time (markup)."""
    m = result.memory
    lines = [f"[b]Peak memory per GPU[/b] [dim]({escape(m.phase)})[/dim]"]
    lines += [f"{SHORT_NAMES.get(p.name, p.name):<16}{p.gib:>7.2f} GiB" for p in m.parts]
    lines.append(f"[b]{'peak allocated':<16}{m.peak_gib:>7.2f} GiB[/b]")
    lines += [f"{SHORT_NAMES.get(p.name, p.name):<16}{p.gib:>7.2f} GiB" for p in m.overhead]
    lines.append(f"[b]{'needed':<16}{m.total_gib:>7.2f} GiB[/b]")
    if result.no_gpu:
        lines.append(f"[dim]{escape(result.no_gpu)}[/dim]")
    lines += fit_lines(result)
    if result.changes:
        lines.append("[b]To fit, largest saving first:[/b]")
        for c in result.changes[:4]:
            mark = "[green]fits[/green]" if c.fits else "[yellow]not enough[/yellow]"
            lines.append(f"• {escape(c.text)} -> {c.total_gib:.1f} GiB ({mark})")
    lines.append(_time_text(result))
    lines += [f"[dim]note: {escape(n)}[/dim]" for n in m.notes]
    return "\n".join(lines)


def _time_text(result) -> str:
    if result.time is None:
        return f"[b]Time:[/b] {escape(result.time_error)}"
    t = result.time
    return (f"[b]{eta_text(result)}[/b]: {t.steps:,} steps, {t.tokens:,.0f} tokens at "
            f"{t.speed.low:,.0f}-{t.speed.high:,.0f} tokens/s [dim]({escape(t.speed.source)}; "
            f"tokens: {escape(t.data.method)})[/dim]")

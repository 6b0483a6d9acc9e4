"""`tui-tune demo prepare [DIR]`: build the offline demo model, tokenizer and data.

torch and transformers are imported inside main only, so `tui-tune --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-tune demo", description="Offline demo assets: a tiny Llama, its BPE tokenizer "
        "and an arithmetic dataset, matching the demo-tiny preset; a tiny BERT-style encoder "
        "with its WordPiece tokenizer and a tagging (NER) dataset, matching demo-tokens; a tiny "
        "T5 and a numbers-to-words dataset, matching demo-seq2seq; a tiny LLaVA-style "
        "vision-language model and pictures of coloured shapes, matching demo-vision.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    prepare = sub.add_parser("prepare", help="build DIR/model, DIR/encoder, DIR/seq2seq, "
                             "DIR/vision and DIR/data (default ./demo)")
    prepare.add_argument("dir", nargs="?", default="demo", help="target folder (default: demo)")
    prepare.add_argument("--rows", type=int, default=4000, help="training rows (default 4000)")
    prepare.add_argument("--force", action="store_true", help="rebuild even if DIR exists")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "demo":
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    target = Path(args.dir)
    built = all((target / name / "config.json").is_file()
                for name in ("model", "seq2seq", "vision"))
    if built and not args.force:
        print(f"{target} already holds the demo (pass --force to rebuild).")
        return 0
    from tui_tune.train.demo import prepare  # heavy: torch + transformers

    prepare(target, train_rows=args.rows)
    print(f"demo models, tokenizers and data written to {target}/model, {target}/encoder, "
          f"{target}/seq2seq, {target}/vision and {target}/data;\ntrain them with: tui-tune run "
          "demo-tiny, tui-tune run demo-tokens, tui-tune run demo-seq2seq, tui-tune run "
          "demo-dpo, tui-tune run demo-vision")
    return 0

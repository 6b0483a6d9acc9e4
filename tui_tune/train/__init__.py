"""The training worker: the only package that imports torch, transformers, peft, datasets.

`python -m tui_tune.train RUN_DIR [--resume]` (usually under `accelerate launch`) reads
RUN_DIR/config.toml and talks to the app only through the run directory:

    __main__.py   argument parsing           worker.py      start to `end`, whatever happens
    setup.py      config, accelerator, seed, data, model, optimizer, resume -> Session
    data.py       csv/parquet/jsonl -> rows -> examples (split, sample, user errors)
    formatting.py rows -> token ids + labels (text markers, chat template, chains, masking)
    collate.py    seeded per-epoch batch plans sharded by rank; padded and packed collators
    model.py      tokenizer, backbone (dtype, attention, quantization), adapter methods
    optim.py      parameter groups, optimizers, lr schedules
    losses.py     the training forward (use_cache=False) and the token/sample-averaged loss
    loop.py       steps, accumulation, clipping, step/eval/sample/checkpoint events
    evaluate.py   validation loss, perplexity, BLEU, generated samples
    checkpoint.py resumable checkpoints (weights, optimizer, scheduler, RNG, sampler position)
    reporting.py  events.jsonl (rank 0), ranks/rank-R.json, run.json status
    signals.py    SIGTERM/SIGINT -> stop after the current step, agreed by all ranks
    demo.py       the offline demo tokenizer, model and data (`tui-tune demo prepare`)
"""

"""`tui-tune export RUN --merged DIR | --adapter DIR`: a run's weights as a Hugging Face folder.

Merged: the backbone loaded unquantized (a QLoRA run's in its compute dtype, not 4-bit), the
run's own weights folded in (LoRA/DoRA: peft's merge_and_unload; SSF: scale into the layer's
weight, shift into its bias; full: final/ already is the model), saved as safetensors shards
with the tokenizer, its chat template, a generation_config from the run's prediction settings
and a model card. Adapter: the adapter's own files. The output folder is written as DIR.partial
and renamed (runs/export_folder.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from tui_tune.rundir import RunDir, checkpoint_step
from tui_tune.runs.export_folder import check_target, written_atomically
from tui_tune.runs.files import checkpoint_dirs
from tui_tune.runs.model_card import model_card
from tui_tune.train.adapters import family_for, peft_lora, ssf
from tui_tune.train.errors import UserError
from tui_tune.train.model import DTYPES
from tui_tune.train.setup import read_experiment
from tui_tune.train.tasks import task_for

CARD = "README.md"
# the head's settings a run's saved config.json holds (its labels), for building the backbone
HEAD_KEYS = ("id2label", "label2id", "problem_type", "pad_token_id")


def source_folder(run_dir: Path, checkpoint: str | None) -> Path:
    """final/, or checkpoints/step-N when asked (complete ones only)."""
    run = RunDir(run_dir)
    if checkpoint is None:
        if not run.final.is_dir():
            raise UserError(f"{run.root.name} has no final/ (it did not complete); export a "
                            f"checkpoint with --checkpoint step-N ({available(run_dir)}).")
        return run.final
    name = checkpoint if checkpoint.startswith("step-") else f"step-{checkpoint}"
    found = [folder for folder in checkpoint_dirs(run_dir) if folder.name == name]
    if not found or checkpoint_step(found[0]) is None:
        raise UserError(f"{run.root.name} has no complete checkpoint {name} "
                        f"({available(run_dir)}).")
    if (found[0] / "accelerate").is_dir():
        raise UserError(f"{name} was saved sharded (FSDP or DeepSpeed) and holds no model "
                        "folder; export final/ instead.")
    return found[0]


def available(run_dir: Path) -> str:
    names = [folder.name for folder in checkpoint_dirs(run_dir)]
    return "complete ones: " + ", ".join(names) if names else "it has no complete checkpoint"


def run_tokenizer(exp, run: RunDir, source: Path):
    """The tokenizer the run saved (final/ has it, with the marker chat template of a run
    trained with text markers); for a run without final/, the backbone's made the same way."""
    from transformers import AutoTokenizer

    from tui_tune.train.formatting import marker_chat_template
    from tui_tune.train.model import load_tokenizer

    for folder in (source, run.final):
        if (folder / "tokenizer_config.json").is_file():
            return AutoTokenizer.from_pretrained(
                folder, trust_remote_code=exp.general.trust_remote_code)
    tokenizer = load_tokenizer(exp)
    if exp.general.problem_type == "causal_lm" and not exp.dataset.use_chat_template:
        tokenizer.chat_template = marker_chat_template(exp.dataset, tokenizer)
    return tokenizer


def head_kwargs(exp, task, run: RunDir, source: Path, tokenizer) -> dict:
    """The task's head as trained (labels, problem type): from a saved config.json, else from
    the data files as the worker read them."""
    if task.auto_model == "AutoModelForCausalLM":
        return {}
    for folder in (source, run.final):
        if (folder / "config.json").is_file():
            saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            return {key: saved[key] for key in HEAD_KEYS if key in saved}
    return task.model_kwargs(exp, task.load_data(exp, tokenizer, exp.environment.seed))


def export_dtype(exp) -> torch.dtype:
    """The backbone's float dtype; a quantized run's compute dtype (merged in 16 bits)."""
    arch = exp.architecture
    quantized = arch.backbone_dtype in ("int4", "int8")
    return DTYPES[exp.quantization.compute_dtype if quantized else arch.backbone_dtype]


def load_plain_backbone(exp, task, tokenizer, kwargs: dict):
    """The backbone as the run loaded it, minus what only training needs (quantization,
    dropout, checkpointing): unquantized, in export_dtype."""
    import transformers

    general = exp.general
    if not exp.architecture.pretrained:
        raise UserError("the run trained an adapter on randomly drawn backbone weights, which "
                        "were never saved, so there is nothing to merge it into.",
                        "architecture.pretrained")
    auto_model = getattr(transformers, task.auto_model)
    try:
        model = auto_model.from_pretrained(
            general.backbone, dtype=export_dtype(exp), revision=general.revision,
            trust_remote_code=general.trust_remote_code, **kwargs)
    except OSError as error:
        raise UserError(f"cannot load the backbone to merge into ({error}).",
                        "general.backbone") from error
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    return model


def merged_model(exp, run: RunDir, source: Path, tokenizer):
    """The run's model with its weights folded into plain transformers layers."""
    import transformers

    from tui_tune.train.adapters import load_pretrained_weights

    task = task_for(exp)
    family = family_for(exp.adapter.method)
    kwargs = head_kwargs(exp, task, run, source, tokenizer)
    if family is peft_lora:  # merge_into_backbone also merges what the run started from
        model = load_plain_backbone(exp, task, tokenizer, kwargs)
        return peft_lora.merge_into_backbone(model, source)
    if family is ssf:
        check_ssf_run(exp, task, source)
        model = load_plain_backbone(exp, task, tokenizer, kwargs)
        if exp.general.pretrained_weights:
            model = load_pretrained_weights(model, exp.general.pretrained_weights)
        ssf.load_ssf(model, source)
        return fold_ssf(model, task)
    auto_model = getattr(transformers, task.auto_model)
    return auto_model.from_pretrained(source, dtype="auto",
                                      trust_remote_code=exp.general.trust_remote_code)


def check_ssf_run(exp, task, source: Path) -> None:
    """A new head and unfrozen layers merge only from an SSF folder that saved their weights
    beside the scales and shifts (every run since ssf_weights.pt holds all that learned)."""
    saved = [key for key in torch.load(source / ssf.SSF_WEIGHTS, map_location="cpu")
             if not key.endswith(("ssf_scale", "ssf_shift"))]
    if task.head_is_new and not any(ssf.in_head(key, task.head_modules) for key in saved):
        raise UserError(f"this SSF folder holds no weights for the new {task.name} head "
                        "(saved by an older version, which kept only the scales and shifts), "
                        "so it cannot be merged; export it with --adapter.", "adapter.method")
    unfrozen = [p for p in exp.adapter.unfreeze_layers if not any(p in key for key in saved)]
    if unfrozen:
        raise UserError(f"this SSF folder holds no weights for the unfrozen layers {unfrozen} "
                        "(saved by an older version), so a merged model would differ from the "
                        "trained one; export it with --adapter.", "adapter.unfreeze_layers")


def fold_ssf(model, task):
    """`base(x) * s + t` is a linear layer with weight diag(s) W and bias s * b + t. A layer
    without a bias needs one where t is not 0: it gets one only where the architecture's own
    config can switch biases on (Llama's attention_bias, mlp_bias); otherwise refused."""
    needs_bias = []
    for name, module in list(model.named_modules()):
        if not isinstance(module, ssf.SSFLayer):
            continue
        base, scale, shift = module.base, module.ssf_scale.detach(), module.ssf_shift.detach()
        with torch.no_grad():
            base.weight.mul_(scale.to(base.weight.dtype)[:, None])
            if base.bias is not None:
                base.bias.mul_(scale.to(base.bias.dtype)).add_(shift.to(base.bias.dtype))
        if base.bias is None and bool(shift.any()):
            needs_bias.append((name, shift))
        parent_name, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, leaf, base)
    return with_biases(model, task, needs_bias) if needs_bias else model


def bias_flags(model, task, layers: list[str]) -> list[str]:
    """The config's false bias switches that give the layers a bias (tried on the meta device,
    nothing allocated); refused when some layer gets none from any of them."""
    import transformers

    auto_model = getattr(transformers, task.auto_model)
    settings = model.config.to_dict()
    chosen, covered = [], set()
    for key in [k for k, v in settings.items() if v is False and "bias" in k]:
        config = model.config.__class__.from_dict({**settings, key: True})
        with torch.device("meta"):
            probe = auto_model.from_config(config)
        gained = {n for n in layers if getattr(probe.get_submodule(n), "bias", None) is not None}
        if gained - covered:
            chosen.append(key)
            covered |= gained
    left = [n for n in layers if n not in covered]
    if left:
        raise UserError(f"the SSF shift of {', '.join(left[:4])} cannot fold into this "
                        f"{model.config.model_type} model: those layers have no bias and its "
                        "config has no setting that adds one. Export it with --adapter, or "
                        "train with lora or dora.", "adapter.target_modules")
    return chosen


def with_biases(model, task, needs_bias: list):
    """The same model rebuilt with the bias switches on: each shift becomes its layer's bias,
    every other bias the switches added is 0, so the outputs do not change."""
    import transformers

    flags = bias_flags(model, task, [name for name, _ in needs_bias])
    config = model.config.__class__.from_dict({**model.config.to_dict(),
                                               **dict.fromkeys(flags, True)})
    dtype = next(model.parameters()).dtype
    rebuilt = getattr(transformers, task.auto_model).from_config(config, dtype=dtype)
    state = model.state_dict()
    state.update({f"{name}.bias": shift.to(dtype) for name, shift in needs_bias})
    result = rebuilt.load_state_dict(state, strict=False)
    if result.unexpected_keys or any(not key.endswith(".bias") for key in result.missing_keys):
        raise UserError(f"rebuilding the model with biases left weights out "
                        f"({(result.unexpected_keys + result.missing_keys)[:3]}).",
                        "adapter.target_modules")
    with torch.no_grad():
        for key in result.missing_keys:
            rebuilt.get_parameter(key).zero_()
    if getattr(model, "generation_config", None) is not None:  # a labelling model has none
        rebuilt.generation_config = model.generation_config
    return rebuilt


def set_generation_config(model, exp, tokenizer) -> None:
    """generate() of the exported model decodes as the run's evaluation did (prediction.*)."""
    from tui_tune.train.generation import generation_kwargs

    if not model.can_generate():
        return
    kwargs = generation_kwargs(exp.prediction, tokenizer)
    kwargs.pop("tokenizer", None)
    if not kwargs["do_sample"]:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    model.generation_config.update(**kwargs)
    model.generation_config._from_model_config = False  # else generate() may prefer config.json


def export_merged(run_dir: Path, target: Path, checkpoint: str | None = None,
                  force: bool = False, max_shard_size: str = "5GB") -> Path:
    from transformers.utils import logging

    logging.set_verbosity_error()  # a fresh head's "newly initialized" report: the adapter's
    run = RunDir(run_dir)
    target = check_target(target, run.root, force)
    source = source_folder(run.root, checkpoint)
    exp = read_experiment(run.root)
    tokenizer = run_tokenizer(exp, run, source)
    model = merged_model(exp, run, source, tokenizer)
    set_generation_config(model, exp, tokenizer)
    task = task_for(exp)
    with written_atomically(target) as partial:
        model.save_pretrained(partial, safe_serialization=True, max_shard_size=max_shard_size)
        tokenizer.save_pretrained(partial)
        (partial / CARD).write_text(model_card(run.root, source, "merged model",
                                               merged_usage(task, target)), encoding="utf-8")
    return target


def export_adapter(run_dir: Path, target: Path, checkpoint: str | None = None,
                   force: bool = False) -> Path:
    """The adapter's own files (LoRA family: adapter_config.json + adapter_model.safetensors;
    SSF: ssf_config.json + ssf_weights.pt + config.json), the tokenizer and a card."""
    run = RunDir(run_dir)
    target = check_target(target, run.root, force)
    exp = read_experiment(run.root)
    family = family_for(exp.adapter.method)
    if family.SAVED_AS is None:
        raise UserError(f"method {exp.adapter.method} trains the model's own weights: there is "
                        "no adapter to export; use --merged DIR for the model.", "adapter.method")
    source = source_folder(run.root, checkpoint)
    files = adapter_files(family, source, run)
    tokenizer = run_tokenizer(exp, run, source)
    with written_atomically(target) as partial:
        for file in files:
            shutil.copy2(file, partial / file.name)
        tokenizer.save_pretrained(partial)
        (partial / CARD).write_text(model_card(run.root, source, "adapter",
                                               adapter_usage(exp, family, target)),
                                    encoding="utf-8")
    return target


def adapter_files(family, source: Path, run: RunDir) -> list[Path]:
    """The family's files, and the config.json with the head's labels where the run saved one
    (a checkpoint has none: final/'s then)."""
    names = [peft_lora.SAVED_AS, peft_lora.ADAPTER_WEIGHTS] if family is peft_lora \
        else [ssf.SSF_CONFIG, ssf.SSF_WEIGHTS]
    config = next((folder / "config.json" for folder in (source, run.final)
                   if (folder / "config.json").is_file()), None)
    return [source / name for name in names if (source / name).is_file()] + (
        [config] if config else [])


def merged_usage(task, target: Path) -> str:
    return (f"from transformers import AutoTokenizer, {task.auto_model}\n\n"
            f'model = {task.auto_model}.from_pretrained("{target.name}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{target.name}")')


def adapter_usage(exp, family, target: Path) -> str:
    task = task_for(exp)
    if family is ssf:
        return ("# SSF is tui-tune's own adapter (no peft type): load it with\n"
                "from tui_tune.train.adapters.ssf import load_ssf\n"
                f"from transformers import {task.auto_model}\n\n"
                f'model = load_ssf({task.auto_model}.from_pretrained("{exp.general.backbone}"), '
                f'Path("{target.name}"))')
    first = (f"# trained on top of {exp.general.pretrained_weights} (general.pretrained_weights):"
             "\n# merge that into the backbone first, or use the --merged export\n"
             if exp.general.pretrained_weights else "")
    return (first + "from peft import PeftModel\n"
            f"from transformers import {task.auto_model}\n\n"
            f'base = {task.auto_model}.from_pretrained("{exp.general.backbone}")\n'
            f'model = PeftModel.from_pretrained(base, "{target.name}")')

"""Loading the tokenizer and backbone, and choosing which weights learn (adapter method)."""

from __future__ import annotations

from typing import Any

import torch

from tui_tune.train.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
INIT_WEIGHTS: dict[str, Any] = {"default": True, "gaussian": "gaussian", "pissa": "pissa",
                                "olora": "olora"}


def preflight(exp) -> None:
    """Refuse what cannot run on this machine before anything heavy is loaded: the launch checks
    (runs/preflight.py, one list for the launcher and the worker) asked again here, with CUDA as
    torch sees it, so a config launched by hand without the app is refused the same way."""
    from tui_tune.runs.preflight import WORKER_CHECKS
    from tui_tune.runs.preflight import preflight as launch_checks

    for problem in launch_checks(exp, torch.cuda.device_count(), WORKER_CHECKS)[:1]:
        raise UserError(problem.message, problem.key)


def load_tokenizer(exp):
    from transformers import AutoTokenizer

    general = exp.general
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            general.backbone, trust_remote_code=general.trust_remote_code,
            revision=general.revision)
    except OSError as error:
        raise UserError(f"cannot load a tokenizer from it ({error}); give a local directory "
                        "saved with save_pretrained or a hub id.", "general.backbone") from error
    if exp.dataset.use_chat_template and not tokenizer.chat_template:
        raise UserError(f"the tokenizer of {general.backbone} has no chat template: turn "
                        "use_chat_template off to use the text markers, or pick a chat model.",
                        "dataset.use_chat_template")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if exp.tokenizer.add_prompt_answer_tokens:
        ds = exp.dataset
        markers = [ds.text_system_start, ds.text_prompt_start, ds.text_answer_separator]
        tokenizer.add_special_tokens({"additional_special_tokens": [m for m in markers if m]})
    return tokenizer


def quantization_config(exp):
    from transformers import BitsAndBytesConfig

    q, dtype = exp.quantization, exp.architecture.backbone_dtype
    if dtype == "int4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.quant_type,
                                  bnb_4bit_use_double_quant=q.double_quant,
                                  bnb_4bit_compute_dtype=DTYPES[q.compute_dtype])
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=q.int8_threshold)


def keep_4bit_layers_trainable(model) -> None:
    """Turn off bitsandbytes' one-way CPU repack of 4-bit weights, which breaks training.

    Upstream cause: bitsandbytes >= 0.49.0 (PR #1804, "Cpu fused kernel") repacks a
    Linear4bit's weight in place for its AVX512-BF16 kernel the first time the layer runs on
    the CPU in eval mode with an input that needs no gradient (our evaluation and generation,
    or a training step taken in eval mode). Only CPUs with AVX512-BF16 take that path, so the
    same install passes on one host and fails on another. The repack refuses layers narrower
    than a quantization block (`RuntimeError: shape '[32, 0]' is invalid for input of size
    16` on a tiny model), and a repacked layer's matmul goes through an op without autograd,
    so training after an evaluation silently loses the gradients through it. Linear4bit reads
    the flag set here on every forward; it is this module attribute in bitsandbytes 0.49-0.50.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def load_backbone(exp, tokenizer, device):
    from transformers import AutoModelForCausalLM

    arch, general = exp.architecture, exp.general
    quantized = arch.backbone_dtype in ("int4", "int8")
    kwargs: dict[str, Any] = {
        "dtype": DTYPES[exp.quantization.compute_dtype] if quantized else DTYPES[arch.backbone_dtype],
        "attn_implementation": arch.attn_implementation, "trust_remote_code": general.trust_remote_code,
        "revision": general.revision}
    if quantized:
        kwargs["quantization_config"] = quantization_config(exp)
        kwargs["device_map"] = {"": device}
    if arch.intermediate_dropout > 0:
        kwargs.update(dropout_settings(exp))
    try:
        model = AutoModelForCausalLM.from_pretrained(general.backbone, **kwargs) \
            if arch.pretrained else random_backbone(exp, kwargs)
    except OSError as error:
        raise UserError(f"cannot load a model from it ({error}).", "general.backbone") from error
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    if general.pretrained_weights:
        model = load_pretrained_weights(model, general.pretrained_weights)
    if quantized:
        keep_4bit_layers_trainable(model)
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=arch.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    elif arch.gradient_checkpointing:
        enable_checkpointing(model)
    model.config.use_cache = False
    return model


def random_backbone(exp, kwargs: dict[str, Any]):
    """architecture.pretrained = false (H2O's pretrained): the backbone's architecture from its
    config.json, weights drawn fresh (from the run's seed, set before this). The dropout
    overrides go on the config, as from_pretrained would put them."""
    from transformers import AutoConfig, AutoModelForCausalLM

    general = exp.general
    loading = {"dtype", "attn_implementation", "trust_remote_code", "revision"}
    config = AutoConfig.from_pretrained(
        general.backbone, trust_remote_code=general.trust_remote_code, revision=general.revision,
        **{k: v for k, v in kwargs.items() if k not in loading})
    return AutoModelForCausalLM.from_config(
        config, dtype=kwargs["dtype"], attn_implementation=kwargs["attn_implementation"],
        trust_remote_code=general.trust_remote_code)


def enable_checkpointing(model) -> None:
    """transformers >= 5.23 renamed gradient to activation checkpointing (the old name warns
    and goes in v6); the GPU image's 5.17 has only the old one."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def dropout_settings(exp) -> dict[str, float]:
    """intermediate_dropout for every dropout probability the backbone's config has (names
    differ: attention_dropout in Llama/Qwen/Mistral, resid/embd/attn_pdrop in GPT-2 and Phi)."""
    from transformers import AutoConfig

    general = exp.general
    config = AutoConfig.from_pretrained(general.backbone, trust_remote_code=general.trust_remote_code,
                                        revision=general.revision)
    return {key: exp.architecture.intermediate_dropout for key, value in config.to_dict().items()
            if ("dropout" in key or "pdrop" in key) and isinstance(value, float)
            and not key.startswith(("classifier", "summary"))}


def load_pretrained_weights(model, path_text: str, seen: frozenset = frozenset()):
    """Weights that replace the backbone's: a .safetensors / .bin state dict, a folder of
    them, or an adapter run's final/ or checkpoint (LoRA/DoRA, merged into the backbone, so a
    new adapter or full fine-tuning continues from where that run got to)."""
    from pathlib import Path

    from safetensors.torch import load_file

    from tui_tune.train.ssf import SSF_CONFIG

    path = Path(path_text)
    if (path / "adapter_config.json").is_file():
        return merged_adapter(model, path, seen)
    if (path / SSF_CONFIG).is_file():  # a shift cannot fold into Llama's bias-free layers
        raise UserError("it is an SSF run's final/: its scales and shifts cannot replace the "
                        "backbone's weights. Start from that run's backbone with SSF again, or "
                        "from a LoRA/DoRA or full run's final/.", "general.pretrained_weights",
                        path_text)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise UserError("not found: give a .safetensors or .bin file, or a folder holding "
                        "model*.safetensors.", "general.pretrained_weights", path_text)
    for file in files:
        state = load_file(file) if file.suffix == ".safetensors" else torch.load(
            file, map_location="cpu", weights_only=True)
        result = model.load_state_dict(state, strict=False)
        if len(result.unexpected_keys) == len(state):
            raise UserError("none of its weights fit the backbone's layers.",
                            "general.pretrained_weights", str(file))
    return model


def weights_under(folder):
    """What the run that saved `folder` (its final/ or checkpoints/step-N) itself started
    from: its config.toml's general.pretrained_weights, resolved; None when nothing."""
    from tui_tune.config.toml_io import read_toml
    from tui_tune.rundir import RunDir

    run = RunDir.holding(folder)
    run_dir, config = run.root, run.config
    parent = read_toml(config).get("general", {}).get("pretrained_weights") \
        if config.is_file() else None
    if not parent:
        return None
    path = (run_dir / parent).resolve()
    if not path.exists():
        raise UserError(f"that adapter was trained on top of {parent} (its run's config.toml), "
                        "which no longer exists: without it the adapter does not fit.",
                        "general.pretrained_weights", str(folder))
    return path


def merged_adapter(model, folder, seen: frozenset = frozenset()):
    """peft's adapter loading, then merge_and_unload: the backbone with the adapter folded in.
    An adapter fits only what its own run started from, so that goes in first (a chain of
    continued runs; `seen` stops a cycle)."""
    from peft import PeftModel

    parent = weights_under(folder) if folder.resolve() not in seen else None
    if parent:
        model = load_pretrained_weights(model, str(parent), seen | {folder.resolve()})
    try:
        merged = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except (ValueError, RuntimeError, KeyError) as error:  # another backbone's adapter
        raise UserError(f"its adapter does not fit this backbone ({error}).",
                        "general.pretrained_weights", str(folder)) from error
    for weight in merged.parameters():  # peft froze them for inference: back to as loaded
        if weight.is_floating_point():
            weight.requires_grad_(True)
    return merged


def speedups(model, exp, reporter):
    """liger-kernel fused ops (where installed) and torch.compile, as asked for."""
    arch = exp.architecture
    if arch.liger_kernel:
        try:
            from liger_kernel.transformers import _apply_liger_kernel_to_instance
            _apply_liger_kernel_to_instance(model=model.get_base_model()
                                            if hasattr(model, "get_base_model") else model)
        except ImportError:
            reporter.log("liger_kernel is on but the liger-kernel package is not installed "
                         "(pip install 'tui-tune[liger]'); training without it", "warning")
    if arch.compile:
        model = torch.compile(model)
    return model


def apply_method(model, exp):
    """LoRA family through peft; full and last_layer by requires_grad; freeze by substring."""
    a = exp.adapter
    if a.method in ("lora", "dora", "qlora", "qdora"):
        from peft import LoraConfig, get_peft_model

        targets = "all-linear" if a.target_modules == ["all-linear"] else list(a.target_modules)
        if targets != "all-linear":
            check_patterns(model, targets, "adapter.target_modules", suffix=True)
        check_patterns(model, a.unfreeze_layers, "adapter.unfreeze_layers", suffix=True)
        config = LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout,
                            target_modules=targets, use_dora=a.method in ("dora", "qdora"),
                            use_rslora=a.use_rslora, init_lora_weights=INIT_WEIGHTS[a.init_weights],
                            modules_to_save=list(a.unfreeze_layers) or None, task_type="CAUSAL_LM")
        return get_peft_model(model, config)
    if a.method in ("ssf", "qssf"):
        return _apply_ssf(model, a)
    if a.method == "last_layer":
        last = _last_block_prefix(model)
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith(last) or "lm_head" in name or "model.norm" in name
    check_patterns(model, a.freeze_layers, "adapter.freeze_layers")
    for name, param in model.named_parameters():
        if any(pattern in name for pattern in a.freeze_layers):
            param.requires_grad = False
    if not any(p.requires_grad for p in model.parameters()):
        raise UserError("no parameter is left to train.", "adapter.freeze_layers")
    return model


def check_patterns(model, patterns: list[str], setting: str, suffix: bool = False) -> None:
    """A layer pattern that matches nothing would make its switch silently do nothing.
    peft matches module names by suffix; our own freezing by substring of parameter names."""
    names = [n for n, _ in model.named_modules() if n] + [n for n, _ in model.named_parameters()]
    for pattern in patterns:
        if suffix:
            found = any(n == pattern or n.endswith("." + pattern) for n in names)
        else:
            found = any(pattern in n for n in names)
        if not found:
            leaves = sorted({n.rsplit(".", 1)[-1] for n, _ in model.named_modules()
                             if n and not n.rsplit(".", 1)[-1].isdigit()})
            how = "ends a layer name" if suffix else "is part of a layer name"
            raise UserError(f"'{pattern}' matches no layer of the model (it must be a name that "
                            f"{how}); its layers are called {', '.join(leaves[:24])}.", setting)


def _apply_ssf(model, a):
    from tui_tune.train.ssf import apply_ssf

    try:
        model.ssf_layers = apply_ssf(model, list(a.target_modules))
    except ValueError as error:
        raise UserError(str(error), "adapter.target_modules") from error
    check_patterns(model, a.unfreeze_layers, "adapter.unfreeze_layers")
    for name, param in model.named_parameters():
        if any(pattern in name for pattern in a.unfreeze_layers):
            param.requires_grad = True
    return model


def add_augmentation_hooks(model, exp) -> None:
    """NEFTune noise on the input embeddings (train mode only)."""
    from tui_tune.train.augment import add_neftune

    add_neftune(model, exp.augmentation.neftune_noise_alpha)


def _last_block_prefix(model) -> str:
    indices = {}
    for name, _ in model.named_parameters():
        parts = name.split(".")
        for n, part in enumerate(parts[:-1]):
            if part.isdigit() and parts[n - 1] in ("layers", "h", "blocks", "layer"):
                indices[".".join(parts[:n])] = max(indices.get(".".join(parts[:n]), -1), int(part))
    if not indices:
        raise UserError("cannot find the model's blocks; use method full with freeze_layers.",
                        "adapter.method")
    stem, last = max(indices.items(), key=lambda kv: kv[1])
    return f"{stem}.{last}."


def parameter_counts(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable

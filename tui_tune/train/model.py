"""Loading the tokenizer and the backbone (quantized, with dropout, checkpointing, speedups);
which weights learn is the adapter family's job (adapters/)."""

from __future__ import annotations

from typing import Any

import torch

from tui_tune.train.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def quantization_config(exp, keep: tuple[str, ...] = ()):
    """bitsandbytes' settings; `keep`: modules left unquantized (the task's, e.g. a vision
    tower), else transformers' own choice (the output head)."""
    from transformers import BitsAndBytesConfig

    q, dtype = exp.quantization, exp.architecture.backbone_dtype
    skip = {"llm_int8_skip_modules": list(keep)} if keep else {}
    if dtype == "int4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.quant_type,
                                  bnb_4bit_use_double_quant=q.double_quant,
                                  bnb_4bit_compute_dtype=DTYPES[q.compute_dtype], **skip)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=q.int8_threshold, **skip)


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


def load_backbone(exp, tokenizer, device, data=None):
    """The backbone as the problem type's transformers class (with its head), from the
    folder's weights or drawn fresh; `data` tells the head what it predicts."""
    import transformers

    from tui_tune.train.adapters import load_pretrained_weights
    from tui_tune.train.tasks import task_for

    task = task_for(exp)
    auto_model = getattr(transformers, task.auto_model)
    arch, general = exp.architecture, exp.general
    quantized = arch.backbone_dtype in ("int4", "int8")
    kwargs: dict[str, Any] = {
        "dtype": DTYPES[exp.quantization.compute_dtype] if quantized else DTYPES[arch.backbone_dtype],
        "attn_implementation": arch.attn_implementation, "trust_remote_code": general.trust_remote_code,
        "revision": general.revision, **task.model_kwargs(exp, data)}
    if quantized:
        kwargs["quantization_config"] = quantization_config(exp, task.unquantized_modules)
        kwargs["device_map"] = {"": device}
    if arch.intermediate_dropout > 0:
        kwargs.update(dropout_settings(exp))
    try:
        model = auto_model.from_pretrained(general.backbone, **kwargs) \
            if arch.pretrained else random_backbone(exp, kwargs, auto_model)
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


def random_backbone(exp, kwargs: dict[str, Any], auto_model):
    """architecture.pretrained = false (H2O's pretrained): the backbone's architecture from its
    config.json, weights drawn fresh (from the run's seed, set before this). The dropout
    overrides go on the config, as from_pretrained would put them."""
    from transformers import AutoConfig

    general = exp.general
    loading = {"dtype", "attn_implementation", "trust_remote_code", "revision"}
    config = AutoConfig.from_pretrained(
        general.backbone, trust_remote_code=general.trust_remote_code, revision=general.revision,
        **{k: v for k, v in kwargs.items() if k not in loading})
    return auto_model.from_config(
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


def add_augmentation_hooks(model, exp) -> None:
    """NEFTune noise on the input embeddings (train mode only)."""
    from tui_tune.train.augment import add_neftune

    add_neftune(model, exp.augmentation.neftune_noise_alpha)


def parameter_counts(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable

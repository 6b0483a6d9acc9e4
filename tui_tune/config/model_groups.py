"""Settings for what is trained: the backbone, how it is loaded, and which weights learn."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, field_validator

from tui_tune.config.fields import Group, list_setting, setting
from tui_tune.config.problem_types import PROBLEM_TYPES

ADAPTER_METHODS = ("lora", "dora", "qlora", "qdora", "ssf", "qssf", "full", "last_layer")
LORA_FAMILY = ("lora", "dora", "qlora", "qdora")
QUANTIZED_METHODS = ("qlora", "qdora", "qssf")


class General(Group):
    model_config = ConfigDict(title="General")

    experiment_name: str = setting(
        "experiment", "The experiment's name, shown as each run's name in the runs list and "
        "`ls`; the run id is the UTC time and the preset's name. Save as sets it to the new "
        "preset's name, unless it was changed from the preset's.",
        min_length=1, max_length=80)
    problem_type: Literal[PROBLEM_TYPES] = setting(  # type: ignore[valid-type]
        "causal_lm", "What the model learns. causal_lm: continue a prompt with an answer "
        "(instruction tuning, chat). classification: one class (or several labels) per "
        "text; regression: one or more numbers per text; token_classification: a tag per "
        "word (NER, POS, chunking); dpo: prefer a chosen answer over a rejected one (DPO, "
        "IPO, hinge, KTO-pair). seq2seq and grpo are planned and refused for now.")
    backbone: str = setting(
        "Qwen/Qwen2.5-0.5B", "The model to start from: a local directory saved with "
        "save_pretrained, or a hub id (needs network access on the training machine).",
        min_length=1)
    pretrained_weights: str | None = setting(
        None, "Optional path to weights that replace the backbone's after loading: a state "
        "dict, or a previous run's final/ or checkpoints/step-N (full weights, or a LoRA/DoRA "
        "adapter, which is merged in), to continue from where that run got to.", advanced=True)
    trust_remote_code: bool = setting(
        False, "Run Python code shipped with the backbone. Only for backbones you trust.",
        advanced=True)
    revision: str | None = setting(
        None, "Hub branch, tag or commit of the backbone; empty means the default branch.",
        advanced=True)


class Architecture(Group):
    model_config = ConfigDict(title="Architecture")

    backbone_dtype: Literal["float32", "bfloat16", "float16", "int8", "int4"] = setting(
        "bfloat16", "Precision the backbone weights are loaded in. int4 and int8 load through "
        "bitsandbytes (see the Quantization tab) and need an adapter method on top.")
    gradient_checkpointing: bool = setting(
        True, "Recompute activations in the backward pass: much less memory, about 20-30% slower.")
    intermediate_dropout: float = setting(
        0.0, "Dropout inside the backbone (attention and hidden). 0 keeps the pretrained value off.",
        ge=0.0, le=0.9, advanced=True)
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] = setting(
        "sdpa", "Attention kernel. sdpa is fast and available everywhere; flash_attention_2 "
        "needs the flash-attn package and a recent GPU; eager is the slow reference.")
    compile: bool = setting(
        False, "torch.compile the model: faster steps after a slow first one.", advanced=True)
    liger_kernel: bool = setting(
        False, "Use liger-kernel fused ops (RMSNorm, RoPE, SwiGLU; with the token-averaged loss "
        "also the output layer fused with cross-entropy, no logits kept) when the package is "
        "installed: less memory, more tokens/s on GPUs.", advanced=True)
    pretrained: bool = setting(
        True, "Load the backbone's trained weights. Off: the same architecture (its config.json) "
        "with random weights, seeded, to train from scratch (float dtypes only).",
        advanced=True)
    freeze_vision_tower: bool = setting(
        False, "multimodal_causal_lm with full or last_layer: keep the vision encoder's "
        "weights as they are. LoRA leaves it frozen anyway.")
    freeze_language_model: bool = setting(
        False, "multimodal_causal_lm with full or last_layer: keep the language model's "
        "weights as they are (the vision encoder and projector learn).")


class Adapter(Group):
    model_config = ConfigDict(title="Adapter")

    method: Literal[ADAPTER_METHODS] = setting(  # type: ignore[valid-type]
        "lora", "How the model is fine-tuned. lora/dora: small low-rank adapters; qlora/qdora: "
        "the same on a 4-bit or 8-bit backbone; ssf/qssf: a learned scale and shift per channel; "
        "full: every weight; last_layer: only the final block and the output head.")
    r: int = setting(8, "Rank of the LoRA matrices: capacity of the adapter.", ge=1, le=4096)
    alpha: float = setting(
        16, "LoRA scaling numerator: the update is scaled by alpha / r (alpha / sqrt(r) with "
        "rsLoRA). Twice r is a common choice.", gt=0)
    dropout: float = setting(0.05, "Dropout on the adapter input.", ge=0.0, le=0.9)
    use_rslora: bool = setting(
        False, "Rank-stabilised LoRA: scale by alpha / sqrt(r), which keeps large ranks learning.")
    target_modules: list[str] = list_setting(
        ["all-linear"], "Which layers get adapters: module name suffixes such as q_proj, v_proj, "
        "or all-linear for every linear layer except the output head.", min_length=1)
    unfreeze_layers: list[str] = list_setting(
        [], "Layers trained fully beside the adapter, matched by name substring "
        "(for example embed_tokens, lm_head).", advanced=True)
    freeze_layers: list[str] = list_setting(
        [], "With full or last_layer: layers kept frozen, matched by name substring "
        "(for example embed_tokens).", advanced=True)
    init_weights: Literal["default", "gaussian", "pissa", "olora"] = setting(
        "default", "How adapter weights start. default: B = 0 so training starts at the backbone; "
        "pissa/olora start from the principal components of the weights.", advanced=True)
    lora_projector: bool = setting(
        False, "multimodal_causal_lm: LoRA adapters on the projector (between the vision "
        "encoder and the language model) too, not only on the language model.")

    @field_validator("target_modules", "unfreeze_layers", "freeze_layers", mode="before")
    @classmethod
    def _one_string_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class Quantization(Group):
    model_config = ConfigDict(title="Quantization")

    quant_type: Literal["nf4", "fp4"] = setting(
        "nf4", "4-bit number format (with backbone_dtype int4). nf4 suits normally distributed "
        "weights and is the QLoRA default.")
    double_quant: bool = setting(
        True, "Quantize the quantization constants too: saves about 0.4 bits per weight.")
    compute_dtype: Literal["bfloat16", "float16", "float32"] = setting(
        "bfloat16", "Precision 4-bit weights are dequantized to for the matrix multiplications.")
    int8_threshold: float = setting(
        6.0, "With backbone_dtype int8: activations above this magnitude are computed in 16 bit "
        "(LLM.int8 outliers).", gt=0, advanced=True)

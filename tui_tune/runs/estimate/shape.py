"""A backbone's shape from its config.json, and its exact parameter counts from the safetensors
headers when the weight files are on this machine; no weights are loaded, so a 70B model is
sized on a laptop.

A safetensors file starts with an 8-byte little-endian length and that many bytes of JSON
(tensor name -> dtype, shape, offsets): reading it costs one small read per file.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

# model types whose MLP is up -> activation -> down (no gate); the rest are gated (SwiGLU)
UNGATED = frozenset({"gpt2", "gpt_neox", "gptj", "gpt_bigcode", "opt", "bloom", "falcon", "phi",
                     "bert", "roberta", "xlm-roberta", "deberta", "deberta-v2", "distilbert",
                     "electra", "modernbert", "starcoder2", "codegen", "mpt"})
LEARNED_POSITIONS = frozenset({"gpt2", "opt", "bert", "roberta", "xlm-roberta", "distilbert",
                               "electra", "gpt_bigcode", "codegen"})
HEADER_LIMIT = 100 * 1024 * 1024  # a safetensors header over this is not one


class ShapeError(Exception):
    """The backbone's config.json cannot be found or read (the message names the file)."""


@dataclass(frozen=True)
class Linear:
    """One linear layer of a decoder block: its name (as target_modules names it), sizes, and
    how many of it one token passes through (MoE: the experts it is routed to)."""

    name: str
    d_in: int
    d_out: int
    copies: int = 1  # stored (MoE experts)
    active: int = 1  # used per token (MoE top-k)


@dataclass(frozen=True)
class ModelShape:
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    gated: bool
    experts: int = 0
    experts_per_token: int = 0
    counted: dict[str, int] = field(default_factory=dict)  # from safetensors headers
    source: str = "config.json"

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def block_linears(self) -> list[Linear]:
        """The linear layers of one decoder block, llama's names."""
        h, i = self.hidden, self.intermediate
        attention = [Linear("q_proj", h, self.q_dim), Linear("k_proj", h, self.kv_dim),
                     Linear("v_proj", h, self.kv_dim), Linear("o_proj", self.q_dim, h)]
        n, k = max(self.experts, 1), max(self.experts_per_token, 1) if self.experts else 1
        mlp = [Linear("up_proj", h, i, n, k), Linear("down_proj", i, h, n, k)]
        if self.gated:
            mlp.insert(0, Linear("gate_proj", h, i, n, k))
        return attention + mlp

    @property
    def block_linear_params(self) -> int:
        return sum(x.d_in * x.d_out * x.copies for x in self.block_linears()) \
            + (self.hidden * self.experts if self.experts else 0)

    @property
    def linear_params(self) -> int:
        """Weights of the blocks' linear layers: what 4/8-bit quantization replaces."""
        return self.counted.get("linear", self.layers * self.block_linear_params)

    @property
    def embed_params(self) -> int:
        positions = 2048 * self.hidden if self.model_type in LEARNED_POSITIONS else 0
        return self.counted.get("embed", self.vocab * self.hidden + positions)

    @property
    def head_params(self) -> int:
        return self.counted.get("head", 0 if self.tied else self.vocab * self.hidden)

    @property
    def other_params(self) -> int:
        """Norms and biases."""
        return self.counted.get("other", (2 * self.layers + 1) * self.hidden)

    @property
    def total_params(self) -> int:
        return self.linear_params + self.embed_params + self.head_params + self.other_params

    @property
    def params_per_token(self) -> int:
        """Weights one token's forward multiplies with (MoE: only its experts), for FLOPs."""
        per_block = sum(x.d_in * x.d_out * x.active for x in self.block_linears())
        return self.layers * per_block + self.vocab * self.hidden


def text_config(config: dict) -> dict:
    """A multimodal config keeps the language model's settings under text_config."""
    inner = config.get("text_config")
    return {**config, **inner} if isinstance(inner, dict) else config


def first(config: dict, *names: str, default=None):
    for name in names:
        value = config.get(name)
        if value is not None:
            return value
    return default


def shape_from_config(config: dict, source: str = "config.json") -> ModelShape:
    """ModelShape from a config.json's dict; ShapeError naming what is missing."""
    c = text_config(config)
    model_type = str(c.get("model_type", ""))
    hidden = first(c, "hidden_size", "n_embd", "d_model", "dim")
    layers = first(c, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    heads = first(c, "num_attention_heads", "n_head", "num_heads", "n_heads")
    vocab = first(c, "vocab_size", "padded_vocab_size")
    missing = [name for name, value in (("hidden_size", hidden), ("num_hidden_layers", layers),
                                        ("num_attention_heads", heads), ("vocab_size", vocab))
               if not isinstance(value, int) or value <= 0]
    if missing:
        raise ShapeError(f"{source} has no {', '.join(missing)}: the estimate needs a "
                         "transformers model config.")
    kv = first(c, "num_key_value_heads", "num_kv_heads", "n_head_kv", default=heads)
    if c.get("multi_query"):
        kv = 1
    head_dim = first(c, "head_dim", default=hidden // heads)
    intermediate = first(c, "moe_intermediate_size", "intermediate_size", "n_inner", "ffn_dim",
                         "d_ff", default=4 * hidden) if first(
        c, "num_local_experts", "num_experts", "n_routed_experts") else first(
        c, "intermediate_size", "n_inner", "ffn_dim", "d_ff", default=4 * hidden)
    experts = int(first(c, "num_local_experts", "num_experts", "n_routed_experts", default=0))
    per_token = int(first(c, "num_experts_per_tok", "moe_top_k", "top_k", default=0))
    return ModelShape(
        model_type=model_type, hidden=int(hidden), layers=int(layers), heads=int(heads),
        kv_heads=int(kv or heads), head_dim=int(head_dim), intermediate=int(intermediate),
        vocab=int(vocab), tied=bool(c.get("tie_word_embeddings", True)),
        gated=model_type not in UNGATED, experts=experts,
        experts_per_token=per_token if experts else 0, source=source)


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The Hugging Face cache's copy of a hub model (read-only; nothing is downloaded)."""
    if os.environ.get("HF_HUB_CACHE"):
        cache = Path(os.environ["HF_HUB_CACHE"])
    else:
        home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
        cache = home / "hub"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    ref = repo / "refs" / (revision or "main")
    try:
        commit = ref.read_text().strip() if ref.is_file() else (revision or "")
        snapshot = repo / "snapshots" / commit
        if commit and (snapshot / "config.json").is_file():
            return snapshot
        found = sorted((repo / "snapshots").glob("*/config.json"))
    except OSError:
        return None
    return found[-1].parent if found else None


def backbone_folder(backbone: str, revision: str | None = None) -> Path:
    """The folder holding the backbone's config.json: the local folder, else the hub cache."""
    folder = Path(backbone).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ShapeError(f"{folder} has no config.json (general.backbone).")
        return folder
    snapshot = hub_snapshot(backbone, revision)
    if snapshot is None:
        raise ShapeError(f"no config.json for {backbone} (general.backbone): it is not a local "
                         "folder and not in the Hugging Face cache; download it once "
                         f"(huggingface-cli download {backbone} config.json) or point "
                         "general.backbone at a local copy.")
    return snapshot


def read_shape(backbone: str, revision: str | None = None) -> ModelShape:
    """The backbone's shape, with exact counts when its safetensors files are here."""
    folder = backbone_folder(backbone, revision)
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ShapeError(f"{path} cannot be read as JSON ({error}).") from error
    if not isinstance(config, dict):
        raise ShapeError(f"{path} is not a JSON object.")
    shape = shape_from_config(config, str(path))
    counted = count_safetensors(folder)
    if counted:
        return ModelShape(**{**shape.__dict__, "counted": counted,
                             "source": f"{path} + safetensors headers"})
    return shape


def safetensors_header(path: Path) -> dict:
    """The JSON header of one .safetensors file ({} when it is not one)."""
    try:
        with path.open("rb") as file:
            raw = file.read(8)
            if len(raw) < 8:
                return {}
            (size,) = struct.unpack("<Q", raw)
            if size > HEADER_LIMIT:
                return {}
            header = json.loads(file.read(size))
    except (OSError, ValueError):
        return {}
    return header if isinstance(header, dict) else {}


def tensor_kind(name: str, shape: list[int]) -> str:
    """embed, head, linear (a block's 2-D weight) or other (norms, biases)."""
    if len(shape) < 2:
        return "other"
    lowered = name.lower()
    if any(part in lowered for part in ("embed", "wte", "wpe", "word_embeddings")):
        return "embed"
    if "lm_head" in lowered or lowered.endswith("output.weight") and "layers" not in lowered:
        return "head"
    return "linear"


def count_safetensors(folder: Path) -> dict[str, int]:
    """Parameters per kind from the weight files' headers ({} when there are none)."""
    counts = {"linear": 0, "embed": 0, "head": 0, "other": 0}
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return {}
    for path in files:
        header = safetensors_header(path)
        for name, info in header.items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            dims = info.get("shape")
            if not isinstance(dims, list) or not all(isinstance(d, int) for d in dims):
                continue
            counts[tensor_kind(name, dims)] += math.prod(dims)
    return counts if sum(counts.values()) else {}

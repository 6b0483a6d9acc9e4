"""Peak GPU memory per GPU of a training step, from the settings and the backbone's shape.

The peak is counted the way PyTorch's autograd holds memory, tensor by tensor, not fitted:

- weights: the blocks' linear layers at backbone_dtype (int4: 4 bits + one 8-bit scale per 64
  weights, + one fp32 per 256 scales with double_quant; int8: 1 byte); embeddings, head,
  norms at backbone_dtype, or fp32 under 4/8-bit (peft's prepare_model_for_kbit_training).
  fp32 weights under bf16/fp16 autocast also get a 16-bit copy (autocast's cache, or the one
  the backward keeps).
- adapter weights (LoRA: r x (d_in + d_out) per targeted linear, DoRA + d_out; SSF: a scale
  and a shift per output channel) in fp32, as peft keeps them.
- gradients: one per trainable weight, at its dtype; absent at the loss peak (set to None
  after each step) unless gradients accumulate or DDP keeps its buckets.
- optimizer states: AdamW 2 per trainable weight at its dtype, 8-bit 2 bytes, paged ones in
  unified memory (not on the GPU under pressure), SGD/RMSprop 0-2.
- activations, per token and decoder block, the tensors the backward keeps (e_r: the
  residual stream's bytes, fp32 when the weights are; e_c: the compute dtype's; h, i: hidden
  and MLP sizes): each RMSNorm its fp32 input (4h) and, when its weight trains, the
  normalised input (e_r h); when the linear weights train, their inputs in e_c (one per
  linear when autocast casts an fp32 input separately for each); attention with sdpa/flash
  q, k, v and the output (e_c (2 q_dim + 2 kv_dim)), eager also the fp32 + 16-bit score
  matrices (heads x length per token) and k, v repeated per head; the gated MLP 3 e_c i (the
  activation's input and output, the up projection); LoRA per target its input in e_c (e_a
  without autocast), a 1-byte dropout mask when dropout > 0, and the r-wide middle.
  With gradient checkpointing each block keeps only its input (e_r h) and one block's full
  set is rebuilt at a time during the backward.
- logits and loss: the causal LM's (batch x length x vocab) logits upcast to fp32 for the
  cross-entropy: at the loss's backward the fp32 log-softmax, its gradient and the
  logits' gradient are alive at once, 12 bytes per element (liger-kernel's fused loss: none).

The step's peak is the largest of: the start of the backward (everything the forward kept,
plus the loss's 12 bytes x vocab), each block's recompute under checkpointing, and the
optimizer step (weights, gradients, states, AdamW's temporary). That is the figure torch's
max_memory_allocated reports (the events' mem_peak_gib); what the GPU must hold adds the
CUDA context and the caching allocator's slack (CONTEXT_GIB, ALLOCATOR_SLACK).

DDP keeps a full copy per GPU plus its gradient buckets; FSDP (full shard) and DeepSpeed
ZeRO-3 divide weights, gradients and states by the number of GPUs and gather two blocks at a
time; ZeRO-2 / SHARD_GRAD_OP gradients and states, ZeRO-1 states only.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from tui_tune.runs.estimate.shape import ModelShape

GIB = 1024**3
FLOAT_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
INT4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # packed nibbles, 8-bit absmax per 64, fp32 per 256
INT4_PLAIN_BYTES = 0.5 + 4 / 64  # without double_quant: an fp32 absmax per 64 weights
INT8_BYTES = 1.0
CONTEXT_GIB = 0.6  # CUDA context, cuBLAS workspace: outside torch's allocator
NCCL_GIB = 0.5  # communication buffers with more than one GPU
ALLOCATOR_SLACK = 0.08  # torch's caching allocator reserves this much above the peak
LORA_METHODS = ("lora", "dora", "qlora", "qdora")
SSF_METHODS = ("ssf", "qssf")
PAGED = ("paged_adamw_32bit", "paged_adamw_8bit")
VOCAB_LOGITS = ("causal_lm",)  # problem types whose head is the vocabulary
ALIASES = {"query_key_value": ("q_proj", "k_proj", "v_proj"), "c_attn": ("q_proj", "k_proj",
           "v_proj"), "qkv_proj": ("q_proj", "k_proj", "v_proj"), "Wqkv": ("q_proj", "k_proj",
           "v_proj"), "dense": ("o_proj",), "c_proj": ("o_proj", "down_proj"),
           "out_proj": ("o_proj",), "dense_h_to_4h": ("up_proj",), "c_fc": ("up_proj",),
           "fc1": ("up_proj",), "fc2": ("down_proj",), "dense_4h_to_h": ("down_proj",),
           "gate_up_proj": ("gate_proj", "up_proj"), "w1": ("gate_proj",), "w3": ("up_proj",),
           "w2": ("down_proj",), "query": ("q_proj",), "key": ("k_proj",),
           "value": ("v_proj",)}


@dataclass(frozen=True)
class Settings:
    """The settings the peak depends on, as plain values (a copy is cheap to vary)."""

    method: str = "lora"
    backbone_dtype: str = "bfloat16"
    mixed_precision: str = "bf16"
    gradient_checkpointing: bool = True
    attn_implementation: str = "sdpa"
    batch_size: int = 2
    max_length: int = 2048
    grad_accumulation: int = 1
    optimizer: str = "adamw"
    momentum: float = 0.0
    r: int = 8
    target_modules: tuple[str, ...] = ("all-linear",)
    dropout: float = 0.05
    double_quant: bool = True
    compute_dtype: str = "bfloat16"
    liger_kernel: bool = False
    loss: str = "token_avg_ce"
    problem_type: str = "causal_lm"
    world_size: int = 1
    backend: str = "ddp"
    shard_stage: int = 3  # ZeRO stage (FSDP full shard = 3, SHARD_GRAD_OP = 2)

    @classmethod
    def from_experiment(cls, exp, world_size: int = 1) -> Settings:
        a, t, arch, env = exp.adapter, exp.training, exp.architecture, exp.environment
        return cls(
            method=a.method, backbone_dtype=arch.backbone_dtype,
            mixed_precision=env.mixed_precision,
            gradient_checkpointing=arch.gradient_checkpointing,
            attn_implementation=arch.attn_implementation, batch_size=t.batch_size,
            max_length=exp.tokenizer.max_length, grad_accumulation=t.grad_accumulation,
            optimizer=t.optimizer, momentum=t.momentum, r=a.r,
            target_modules=tuple(a.target_modules), dropout=a.dropout,
            double_quant=exp.quantization.double_quant,
            compute_dtype=exp.quantization.compute_dtype, liger_kernel=arch.liger_kernel,
            loss=t.loss, problem_type=exp.general.problem_type, world_size=max(1, world_size),
            backend=env.distributed_backend,
            shard_stage=shard_stage(env.distributed_backend, env.accelerate_config))

    def but(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def quantized(self) -> bool:
        return self.backbone_dtype in ("int4", "int8")

    @property
    def autocast(self) -> bool:
        return self.mixed_precision in ("bf16", "fp16")


def shard_stage(backend: str, accelerate_config: str | None) -> int:
    """3 unless the accelerate file says zero_stage 1/2 or SHARD_GRAD_OP (read as text)."""
    if backend == "ddp" or not accelerate_config:
        return 3
    try:
        text = Path(accelerate_config).expanduser().read_text(encoding="utf-8")
    except OSError:
        return 3
    stage = re.search(r"zero_stage\s*:\s*(\d)", text)
    if stage:
        return int(stage.group(1))
    if re.search(r"SHARD_GRAD_OP|sharding_strategy\s*:\s*2\b", text):
        return 2
    return 3


@dataclass(frozen=True)
class Part:
    name: str
    gib: float
    note: str = ""


@dataclass(frozen=True)
class MemoryEstimate:
    parts: list[Part]  # what is alive at the peak, by kind
    phase: str  # when the peak happens
    overhead: list[Part]  # outside torch's allocated peak
    notes: list[str] = field(default_factory=list)
    settings: Settings | None = None

    @property
    def peak_gib(self) -> float:
        """torch.cuda.max_memory_allocated's figure (the events' mem_peak_gib)."""
        return sum(p.gib for p in self.parts)

    @property
    def total_gib(self) -> float:
        """What the GPU must hold: the peak plus the context and the allocator's slack."""
        return self.peak_gib + sum(p.gib for p in self.overhead)

    def as_dict(self) -> dict:
        return {"peak_gib": round(self.peak_gib, 3), "total_gib": round(self.total_gib, 3),
                "phase": self.phase,
                "parts": {p.name: round(p.gib, 3) for p in self.parts},
                "overhead": {p.name: round(p.gib, 3) for p in self.overhead},
                "notes": self.notes}


def targeted(shape: ModelShape, targets: tuple[str, ...]) -> tuple[list, list[str]]:
    """The block's linears the adapter goes on, and the target names not recognised."""
    linears = shape.block_linears()
    if "all-linear" in targets:
        return linears, []
    names, unknown = set(), []
    for target in targets:
        leaf = target.rsplit(".", 1)[-1]
        known = {x.name for x in linears}
        if leaf in known:
            names.add(leaf)
        elif leaf in ALIASES:
            names.update(ALIASES[leaf])
        else:
            unknown.append(target)
    return [x for x in linears if x.name in names], unknown


@dataclass(frozen=True)
class Counts:
    """Parameter counts and per-token activation bytes for one (shape, settings)."""

    trainable: float  # parameters that get gradients and optimizer states
    trainable_bytes: int  # their dtype's bytes
    adapter: float  # adapter parameters (fp32), not part of the backbone
    block_params: float  # one decoder block's parameters
    grad_blocks: int  # blocks the backward goes through
    block_act: float  # bytes per token one block keeps for the backward
    checkpoint_act: float  # bytes per token one checkpointed block keeps
    top_act: float  # bytes per token of the final norm and the head's input
    loss_act: float  # bytes per token of the logits and the loss at the loss's backward


def counts(shape: ModelShape, s: Settings) -> tuple[Counts, list[str]]:
    notes: list[str] = []
    h, i = shape.hidden, shape.intermediate
    k = max(shape.experts_per_token, 1)
    float_bytes = 4 if s.quantized else FLOAT_BYTES[s.backbone_dtype]
    e_r = float_bytes  # the residual stream has the embeddings' dtype
    e_c = 2 if s.autocast else (FLOAT_BYTES[s.compute_dtype] if s.quantized else float_bytes)
    e_a = e_c if s.autocast else 4
    casts = s.autocast and float_bytes == 4  # autocast casts each linear's input separately
    base_trains = s.method in ("full", "last_layer")
    block_params = shape.linear_params / shape.layers + 2 * h
    adapter = 0.0
    lora_act = 0.0
    if s.method in LORA_METHODS:
        chosen, unknown = targeted(shape, s.target_modules)
        if unknown:
            notes.append(f"adapter.target_modules {', '.join(unknown)}: not a linear layer of "
                         f"a {shape.model_type or 'this'} block the estimate knows; not counted")
        dora = s.method in ("dora", "qdora")
        for x in chosen:
            adapter += x.copies * (s.r * (x.d_in + x.d_out) + (x.d_out if dora else 0))
            lora_act += x.active * (e_a * x.d_in + (x.d_in if s.dropout > 0 else 0)
                                    + e_a * s.r + (2 * e_c * x.d_out if dora else 0))
        adapter *= shape.layers
    elif s.method in SSF_METHODS:
        outs = sum(x.d_out * x.active for x in shape.block_linears()) + 2 * h
        adapter = 2 * outs * shape.layers
        lora_act = e_c * outs
    norms = 2 * (4 * h + (e_r * h if base_trains else 0))
    base_inputs = 0.0
    if base_trains:
        base_inputs = e_c * h * (3 if casts else 1) + e_c * h * k * (
            (2 if casts else 1) if shape.gated else 1) + e_c * i * k
    if s.attn_implementation == "eager":
        attention = e_c * (4 * shape.q_dim) + shape.heads * s.max_length * (4 + e_c)
        attention += e_c * shape.q_dim if base_trains else 0  # o_proj's contiguous input
    else:
        attention = e_c * (2 * shape.q_dim + 2 * shape.kv_dim)
    mlp = e_c * i * k * ((2 if s.liger_kernel else 3) if shape.gated else 1)
    block_act = norms + base_inputs + attention + mlp + lora_act
    vocab_head = s.problem_type in VOCAB_LOGITS
    logits = 12 * shape.vocab if vocab_head and not (
        s.liger_kernel and s.loss == "token_avg_ce") else 0
    top = 4 * h + (e_r * h + e_c * h if base_trains else 0)
    if s.method == "full":
        trainable, grad_blocks = float(shape.total_params), shape.layers
    elif s.method == "last_layer":
        trainable = block_params + (shape.head_params or shape.embed_params) + h
        grad_blocks = 1
    else:
        trainable, grad_blocks = adapter, shape.layers
    return Counts(trainable=trainable, trainable_bytes=float_bytes if base_trains else 4,
                  adapter=adapter, block_params=block_params, grad_blocks=grad_blocks,
                  block_act=block_act, checkpoint_act=e_r * h, top_act=top,
                  loss_act=logits), notes


def weight_bytes(shape: ModelShape, s: Settings) -> float:
    rest = shape.embed_params + shape.head_params + shape.other_params
    if s.backbone_dtype == "int4":
        per = INT4_BYTES if s.double_quant else INT4_PLAIN_BYTES
        return shape.linear_params * per + rest * 4
    if s.backbone_dtype == "int8":
        return shape.linear_params * INT8_BYTES + rest * 4
    return shape.total_params * FLOAT_BYTES[s.backbone_dtype]


def autocast_copy_bytes(shape: ModelShape, s: Settings, c: Counts) -> float:
    """16-bit copies of fp32 weights that autocast makes and the backward keeps."""
    if not s.autocast:
        return 0.0
    head = shape.vocab * shape.hidden
    if s.quantized:
        return 2.0 * head
    if FLOAT_BYTES[s.backbone_dtype] != 4:
        return 0.0
    return 2.0 * (shape.linear_params * c.grad_blocks / shape.layers + head)


def optimizer_bytes(s: Settings, c: Counts) -> tuple[float, float, float]:
    """(states on the GPU, states paged, the step's temporary) in bytes."""
    n, b = c.trainable, c.trainable_bytes
    states = {"adamw": 2 * b, "adam": 2 * b, "adamw_8bit": 2, "paged_adamw_8bit": 2,
              "paged_adamw_32bit": 8, "adadelta": 2 * b,
              "rmsprop": b * (2 if s.momentum > 0 else 1),
              "sgd": b if s.momentum > 0 else 0}[s.optimizer] * n
    temporary = b * n if s.optimizer in ("adamw", "adam") else 0.0
    if s.optimizer in PAGED:
        return 0.0, states, temporary
    return states, 0.0, temporary


def estimate(shape: ModelShape, s: Settings) -> MemoryEstimate:
    """The step's peak per GPU and its breakdown (see the module's docstring)."""
    c, notes = counts(shape, s)
    tokens = s.batch_size * s.max_length
    w = s.world_size if s.world_size > 1 and s.backend in ("fsdp", "deepspeed") else 1
    stage = s.shard_stage if w > 1 else 0
    weights = weight_bytes(shape, s) / (w if stage >= 3 else 1)
    if stage >= 3:
        weights += 2 * c.block_params * FLOAT_BYTES.get(s.backbone_dtype, 2)  # gathered blocks
    copies = autocast_copy_bytes(shape, s, c) / (w if stage >= 3 else 1)
    adapter = c.adapter * 4 / (w if stage >= 3 else 1)
    states, paged, temporary = optimizer_bytes(s, c)
    states, temporary = states / (w if stage >= 1 else 1), temporary / (w if stage >= 1 else 1)
    grads = c.trainable * c.trainable_bytes / (w if stage >= 2 else 1)
    ddp_buckets = grads if s.world_size > 1 and s.backend == "ddp" else 0.0
    held_grads = grads if s.grad_accumulation > 1 else 0.0
    layer_grads = grads / max(c.grad_blocks, 1)
    residual_grads = 2 * c.checkpoint_act * tokens
    if s.gradient_checkpointing:
        kept = c.grad_blocks * c.checkpoint_act * tokens
        rebuilt = c.block_act * tokens
    else:
        kept, rebuilt = c.grad_blocks * c.block_act * tokens, 0.0
    phases = {
        "start of the backward (loss)": (kept, c.top_act * tokens, c.loss_act * tokens,
                                         held_grads),
        "backward, first block" if not rebuilt else "backward, first block rebuilt":
            (kept + rebuilt + residual_grads, 0.0, 0.0, max(held_grads, layer_grads)),
        "backward, last block" if not rebuilt else "backward, last block rebuilt":
            (kept / max(c.grad_blocks, 1) + rebuilt + residual_grads, 0.0, 0.0, grads),
        "optimizer step": (0.0, 0.0, 0.0, grads + temporary),
    }
    phase, (act, head_act, loss_act, grad_now) = max(
        phases.items(), key=lambda item: sum(item[1]))
    quant = {"int4": "4-bit", "int8": "8-bit"}.get(s.backbone_dtype, s.backbone_dtype)
    parts = [Part("weights", (weights) / GIB, f"{shape.total_params / 1e6:,.0f}M at {quant}"
                  + (f", / {w} GPUs" if stage >= 3 else "")),
             Part("autocast 16-bit copies", copies / GIB, "fp32 weights cast for bf16/fp16"),
             Part("adapter weights", adapter / GIB, f"{c.adapter / 1e6:.1f}M fp32"),
             Part("gradients", (grad_now if phase != "optimizer step" else grads) / GIB
                  + ddp_buckets / GIB,
                  f"{c.trainable / 1e6:.1f}M trainable" + (", + DDP buckets"
                                                          if ddp_buckets else "")),
             Part("optimizer states", states / GIB, s.optimizer
                  + (f" (+{temporary / GIB:.2f} GiB during the step)" if temporary else "")),
             Part("activations", (act + head_act) / GIB,
                  f"{s.batch_size} x {s.max_length} tokens x {c.grad_blocks} blocks"
                  + (", checkpointed" if s.gradient_checkpointing else "")),
             Part("logits and loss", loss_act / GIB,
                  f"{s.batch_size} x {s.max_length} x {shape.vocab} fp32" if loss_act else "")]
    if phase == "optimizer step":
        parts[3] = Part("gradients", (grads + ddp_buckets) / GIB, parts[3].note)
        parts[4] = Part("optimizer states", (states + temporary) / GIB, s.optimizer
                        + " (+ the step's temporary)" if temporary else s.optimizer)
    overhead = [Part("CUDA context", CONTEXT_GIB + (NCCL_GIB if s.world_size > 1 else 0.0),
                     "outside torch's allocator" + (", NCCL" if s.world_size > 1 else "")),
                Part("allocator slack", ALLOCATOR_SLACK * sum(p.gib for p in parts),
                     f"{ALLOCATOR_SLACK:.0%} reserved above the peak")]
    if paged:
        notes.append(f"{s.optimizer}: {paged / GIB:.2f} GiB of states in unified memory, "
                     "moved to CPU RAM when the GPU is full (not counted)")
    if s.problem_type not in VOCAB_LOGITS:
        notes.append(f"{s.problem_type}: the head's outputs are small; counted as none")
    return MemoryEstimate([p for p in parts if p.gib > 0 or p.name == "weights"], phase,
                          overhead, notes, s)

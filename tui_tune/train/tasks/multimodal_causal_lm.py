"""Multimodal causal language modeling: image(s) and a prompt in, the answer text out, on a
Hugging Face vision-language model (`AutoProcessor` + `AutoModelForImageTextToText`: LLaVA,
Qwen2-VL, Idefics3/SmolVLM, PaliGemma...).

A row becomes the processor's chat template over [system,] user (an image part per image, then
the prompt text) and assistant (the answer). As TRL's vision-language collator does, the prompt
(with its images) and the completion are encoded apart and joined: the processor expands each
image into its image tokens in the prompt, so every prompt token, and so every image token, is
masked out of the labels; only the answer and the template's closing tokens are learned. The
images are read and processed per batch (never held for the whole data set), and the rows of a
batch may have different numbers of image tokens: each row is encoded alone and the batch is
padded on the right, the images' tensors joined along their first dimension.

The loss is the model's own `labels=` loss. Evaluation: the validation loss over answer
tokens, perplexity, and an answer generated for every validation row (BLEU, sacrebleu), the
first rows' shown as samples with their image paths. The image processor is the PIL one
(`use_fast=False`): torchvision is optional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tui_tune.runs.image_rows import images_base, row_images
from tui_tune.train import metrics
from tui_tune.train.data import SplitData, read_split_rows
from tui_tune.train.errors import UserError
from tui_tune.train.formatting import IGNORE_INDEX, prompt_of
from tui_tune.train.generation import generate_all, generation_kwargs
from tui_tune.train.tasks.base import EvalResult, Task, token_mean_loss
from tui_tune.train.tasks.causal_lm import shifted_labels, token_losses

# the parts of a vision-language model, by the module names transformers gives them
VISION_PARTS = ("vision_tower", "visual", "vision_model")
PROJECTOR_PARTS = ("multi_modal_projector", "connector", "merger")
LANGUAGE_PARTS = ("language_model", "text_model")


@dataclass
class ImageTextExample:
    """One row: its chat-templated prompt (image placeholders unexpanded), the completion's
    token ids, its image files, and the texts shown in samples. len() estimates its tokens
    with the images expanded (batches are planned by it)."""
    prompt_text: str
    answer_ids: list[int]
    images: list[str]
    prompt: str
    answer: str
    length: int

    def __len__(self) -> int:
        return self.length


def load_processor(exp, tokenizer):
    """The backbone's processor with the worker's tokenizer (its padding token) and the image
    settings applied; the PIL image processor, so torchvision is not needed."""
    from transformers import AutoProcessor

    general = exp.general
    try:
        processor = AutoProcessor.from_pretrained(
            general.backbone, use_fast=False, trust_remote_code=general.trust_remote_code,
            revision=general.revision)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load a processor from it ({error}); a multimodal backbone "
                        "needs its processor saved beside it (processor.save_pretrained).",
                        "general.backbone") from error
    if not hasattr(processor, "image_processor"):
        raise UserError(f"{general.backbone} has no image processor: pick a vision-language "
                        "model (LLaVA, Qwen2-VL, Idefics3, PaliGemma...).", "general.backbone")
    if not processor.chat_template:
        raise UserError(f"the processor of {general.backbone} has no chat template, which "
                        "places the images in the prompt: pick a chat (instruct) model.",
                        "general.backbone")
    processor.tokenizer = tokenizer
    apply_image_settings(processor.image_processor, exp.tokenizer)
    return processor


def apply_image_settings(image_processor, tok) -> None:
    """tokenizer.image_size / max_image_tokens onto the image processor's own size keys."""
    if tok.image_size:
        for name in ("size", "crop_size"):
            size = getattr(image_processor, name, None)
            if not size:
                continue
            keys = [k for k in ("height", "width", "shortest_edge") if k in size]
            setattr(image_processor, name, {**dict(size), **dict.fromkeys(keys, tok.image_size)})
    if tok.max_image_tokens:
        patch = getattr(image_processor, "patch_size", None)
        merge = getattr(image_processor, "merge_size", 1) or 1
        if not patch:
            return  # a fixed number of tokens per image: nothing to cap
        pixels = tok.max_image_tokens * (patch * merge) ** 2
        if hasattr(image_processor, "max_pixels"):
            image_processor.max_pixels = pixels
        size = getattr(image_processor, "size", None)
        if size and "longest_edge" in size:
            image_processor.size = {**dict(size), "longest_edge": pixels}


def open_image(path: str, mode: str, fill: tuple[int, ...]):
    """The image as RGB, made square as tokenizer.image_resize says (pad: LLaVA-1.5's
    expand2square with the processor's mean colour; crop: the centre square)."""
    from PIL import Image

    with Image.open(path) as file:
        image = file.convert("RGB")
    width, height = image.size
    if mode == "pad" and width != height:
        side = max(width, height)
        square = Image.new("RGB", (side, side), fill)
        square.paste(image, ((side - width) // 2, (side - height) // 2))
        return square
    if mode == "crop" and width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return image.crop((left, top, left + side, top + side))
    return image


def messages_of(prompt: str, n_images: int, system: str | None) -> list[dict[str, Any]]:
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": prompt}]
    head = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    return [*head, {"role": "user", "content": content}]


def chat_texts(processor, messages: list[dict], answer: str | None) -> tuple[str, str]:
    """(prompt text with the generation prompt, the completion that follows it)."""
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if answer is None:
        return prompt, ""
    full = processor.apply_chat_template(
        [*messages, {"role": "assistant", "content": [{"type": "text", "text": answer}]}],
        tokenize=False)
    if not full.startswith(prompt):
        raise UserError("the processor's chat template writes a conversation that does not "
                        "begin with its own generation prompt, so the answer cannot be told "
                        "apart: pick a model with a standard chat template.", "general.backbone")
    return prompt, full[len(prompt):]


class MultimodalCausalLM(Task):
    name = "multimodal_causal_lm"
    auto_model = "AutoModelForImageTextToText"
    peft_task_type = "CAUSAL_LM"
    head_modules = ("lm_head",)
    # QLoRA quantizes the language model only: the vision tower and projector stay as loaded.
    # transformers 5.24 matches these from the start of a module's name or as a regex (so
    # ".*name"), older versions as a substring (so "name")
    unquantized_modules = tuple(f"{prefix}{name}" for name in (*VISION_PARTS, *PROJECTOR_PARTS)
                                for prefix in ("", ".*")) + ("lm_head",)

    def __init__(self):
        self.processor = None
        self.tokens_per_image = 0
        self.resize = "processor"  # tokenizer.image_resize, for generation too

    def processor_for(self, exp, tokenizer):
        if self.processor is None:
            self.processor = load_processor(exp, tokenizer)
            self.resize = exp.tokenizer.image_resize
        return self.processor

    # -- data ---------------------------------------------------------------------------------
    def load_data(self, exp, tokenizer, seed: int) -> SplitData:
        ds = exp.dataset
        for setting in ("parent_id_column",):
            if getattr(ds, setting):
                raise UserError("multimodal_causal_lm reads one prompt and answer per row; "
                                "chained conversations are not read: leave it empty.",
                                f"dataset.{setting}")
        if exp.augmentation.token_mask_probability > 0:
            raise UserError("masking random input tokens would replace image tokens, which "
                            "the model must see as the processor wrote them: set it to 0.",
                            "augmentation.token_mask_probability")
        processor = self.processor_for(exp, tokenizer)
        rows = read_split_rows(exp, seed)
        train = self.examples(rows.train, exp, processor, images_base(ds.train_file))
        val = self.examples(rows.val, exp, processor, images_base(rows.val_file))
        extra = val if exp.training.train_on_validation else []
        notes = [n for n in (self.image_note(exp), long_note(train + val, exp)) if n]
        return SplitData(train + extra, val, None, notes)

    def examples(self, rows: list[dict], exp, processor, base: Path,
                 targets: bool = True) -> list[ImageTextExample]:
        ds, out = exp.dataset, []
        rows_images = [[str(p) for p in row_images(r, ds.image_column, base, n)]
                       for n, r in enumerate(rows, 1)]
        if not self.tokens_per_image:
            self.tokens_per_image = self.measure_image_tokens(rows, rows_images, exp, processor)
        for row, images in zip(rows, rows_images):
            prompt = prompt_of(row, ds.prompt_columns, ds.prompt_column_separator)
            system = str(row.get(ds.system_column) or "") if ds.system_column else None
            answer = str(row.get(ds.answer_column) or "") if targets else None
            prompt_text, completion = chat_texts(processor, messages_of(prompt, len(images),
                                                                         system), answer)
            answer_ids = encode(processor.tokenizer, completion)
            prompt_tokens = len(encode(processor.tokenizer, prompt_text))
            length = prompt_tokens + len(images) * self.tokens_per_image + len(answer_ids)
            out.append(ImageTextExample(prompt_text, answer_ids, images, prompt, answer or "",
                                        length))
        return out

    def measure_image_tokens(self, rows, rows_images, exp, processor) -> int:
        """How many tokens the processor adds for one image, its placeholder expanded (from
        the first row with one): lengths are planned with it."""
        for row, images in zip(rows, rows_images):
            if images:
                text = chat_texts(processor, messages_of("", 1, None), None)[0]
                image = open_image(images[0], exp.tokenizer.image_resize, fill_of(processor))
                expanded = processor(text=[text], images=[image], add_special_tokens=False)
                return max(len(expanded["input_ids"][0]) - len(encode(processor.tokenizer,
                                                                      text)), 0)
        return 0

    def image_note(self, exp) -> str | None:
        if exp.tokenizer.max_image_tokens and not getattr(self.processor.image_processor,
                                                          "patch_size", None):
            return (f"tokenizer.max_image_tokens = {exp.tokenizer.max_image_tokens} is ignored: "
                    "this processor makes the same number of tokens of every image.")
        return None

    def train_collator(self, exp, tokenizer):
        return ImageTextCollator(self.processor_for(exp, tokenizer), exp.tokenizer.max_length,
                                 self.resize)

    # -- which weights learn -----------------------------------------------------------------
    def lora_targets(self, model, exp, targets):
        """A regex naming the linear layers under the language model (and the projector with
        adapter.lora_projector) whose names end as adapter.target_modules say: peft's
        all-linear would put adapters on the vision tower too."""
        prefixes = part_prefixes(model, LANGUAGE_PARTS)
        if exp.adapter.lora_projector:
            prefixes += part_prefixes(model, PROJECTOR_PARTS)
        if not prefixes:
            return targets
        leaves = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                         if isinstance(module, torch.nn.Linear)
                         and name.startswith(tuple(p + "." for p in prefixes))
                         and (targets == "all-linear" or name.rsplit(".", 1)[-1] in targets)})
        if not leaves:
            raise UserError("none of these layers is in the language model.",
                            "adapter.target_modules")
        where = "|".join(re.escape(p) for p in prefixes)
        return rf"(?:{where})\.(?:.*\.)?(?:{'|'.join(map(re.escape, leaves))})"

    def freeze_parts(self, model, exp) -> None:
        arch = exp.architecture
        frozen = (part_prefixes(model, VISION_PARTS) if arch.freeze_vision_tower else []) + \
            (part_prefixes(model, LANGUAGE_PARTS) + ["lm_head"]
             if arch.freeze_language_model else [])
        keep = tuple(p + "." for p in part_prefixes(model, PROJECTOR_PARTS))
        for name, param in model.named_parameters():
            if name.startswith(tuple(p + "." for p in frozen)) and not name.startswith(keep):
                param.requires_grad = False
        if not any(p.requires_grad for p in model.parameters()):
            raise UserError("no parameter is left to train.", "architecture.freeze_language_model")

    # -- training and evaluation ---------------------------------------------------------------
    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        """The model's own loss; num_items_in_batch: an all-masked batch is 0, not 0/0."""
        answer_tokens = (shifted_labels(batch["labels"]) != IGNORE_INDEX).sum().clamp(min=1)
        return model(**batch, use_cache=False, num_items_in_batch=answer_tokens).loss

    def evaluate(self, model, tokenizer, examples, accelerator, exp) -> EvalResult:
        pred = exp.prediction
        loss = self.validation_loss(model, examples, accelerator, exp)
        values = {"perplexity": metrics.perplexity(loss)}
        judged = examples if pred.metric in ("bleu", "exact_match") \
            else examples[:pred.num_samples]
        answers = generate_all(model, tokenizer, judged, exp, accelerator,
                               answers=self.generate_answers) if judged else []
        samples = []
        if answers is not None:
            references = [e.answer for e in judged]
            if pred.metric == "bleu":
                values["bleu"] = metrics.bleu(answers, references)
            if pred.metric == "exact_match" and judged:
                right = metrics.exact_matches(answers, references)
                values.update(exact_match=right / len(judged), exact_count=right,
                              exact_total=len(judged))
            samples = [{"prompt": e.prompt, "generation": a, "reference": e.answer,
                        "images": list(e.images)}
                       for e, a in zip(examples[:pred.num_samples], answers)]
        metric = pred.metric if pred.metric in values else "perplexity"
        return EvalResult(loss, metric, values[metric], values, samples)

    def validation_loss(self, model, examples, accelerator, exp) -> float:
        """Answer-token-averaged loss over the validation rows; each rank every world-th."""
        def summed(model, batch):
            labels = batch.pop("labels")
            logits = model(**batch, use_cache=False).logits
            return (token_losses(logits, labels).sum(),
                    (shifted_labels(labels) != IGNORE_INDEX).sum())

        collate = ImageTextCollator(self.processor, exp.tokenizer.max_length, self.resize)
        return token_mean_loss(model, examples, collate, accelerator, exp.training.batch_size,
                               summed)

    @torch.no_grad()
    def generate_answers(self, model, tokenizer, examples, prediction, device,
                         batch_size: int | None = None) -> list[str]:
        """Each prompt (with its images) left-padded, generated from as prediction.* says."""
        collate = ImageTextCollator(self.processor, None, self.resize)
        kwargs = generation_kwargs(prediction, tokenizer)
        was_training = model.training
        model.eval()
        texts: list[str] = []
        size = batch_size or prediction.batch_size or 8
        for start in range(0, len(examples), size):
            batch = collate.prompts(examples[start:start + size])
            width = batch["input_ids"].shape[1]
            out = model.generate(**{k: v.to(device) for k, v in batch.items()}, use_cache=True,
                                 **kwargs)
            texts += [t.strip() for t in tokenizer.batch_decode(out[:, width:],
                                                                skip_special_tokens=True)]
        if was_training:
            model.train()
        return texts

    # -- prediction and final/ -----------------------------------------------------------------
    def predict(self, model, tokenizer, rows, accelerator, exp, progress=None):
        """The generated answer of each test row (its images relative to the test file)."""
        processor = self.processor_for(exp, tokenizer)
        base = images_base(exp.dataset.test_file or "")
        examples = self.examples(rows, exp, processor, base, targets=False)
        answers = generate_all(model, tokenizer, examples, exp, accelerator, progress,
                               answers=self.generate_answers)
        return None if answers is None else [{"prediction": a} for a in answers]

    def write_final(self, tokenizer, exp, folder: Path) -> None:
        """The processor (tokenizer, image processor, chat template) beside the weights, so
        AutoProcessor loads it with the model."""
        self.processor_for(exp, tokenizer).save_pretrained(folder)


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of chat-templated text: its special tokens are in it already."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def fill_of(processor) -> tuple[int, ...]:
    mean = getattr(processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
    return tuple(round(m * 255) for m in mean)


def part_prefixes(model, parts: tuple[str, ...]) -> list[str]:
    """The outermost modules named as one of `parts` (e.g. model.language_model)."""
    found: list[str] = []
    for name, _ in model.named_modules():
        if name.rsplit(".", 1)[-1] in parts and not any(name.startswith(f + ".") for f in found):
            found.append(name)
    return found


def long_note(examples: list[ImageTextExample], exp) -> str | None:
    longest = exp.tokenizer.max_length
    cut = sum(1 for e in examples if len(e) > longest)
    if not cut:
        return None
    return (f"tokenizer.max_length = {longest} cuts the answer of about {cut} of "
            f"{len(examples)} rows (prompts and images are never cut).")


class ImageTextCollator:
    """Each row's prompt encoded with its images by the processor (image tokens expanded, as
    many as that row's images make), its completion ids after it; labels -100 on the prompt
    and the padding; padded on the right. Image tensors (pixel_values, image sizes or grids)
    are joined along their first dimension (per image), padded where their shapes differ."""

    def __init__(self, processor, max_length: int | None, resize: str):
        self.processor = processor
        self.pad_id = processor.tokenizer.pad_token_id
        self.max_length, self.resize = max_length, resize
        self.fill = fill_of(processor)
        self.image_token = getattr(processor, "image_token_id", None)

    def encode_prompt(self, example: ImageTextExample) -> dict[str, torch.Tensor]:
        images = [open_image(p, self.resize, self.fill) for p in example.images]
        return self.processor(text=[example.prompt_text], images=images or None,
                              add_special_tokens=False, return_tensors="pt")

    def __call__(self, examples: list[ImageTextExample]) -> dict[str, torch.Tensor]:
        encoded = [self.encode_prompt(e) for e in examples]
        rows = []
        for ex, enc in zip(examples, encoded):
            prompt = enc["input_ids"][0].tolist()
            answer = ex.answer_ids
            if self.max_length is not None:
                answer = answer[:max(self.max_length - len(prompt), 0)]
            labels = [IGNORE_INDEX] * len(prompt) + answer
            rows.append((prompt + answer, labels, len(prompt)))
        width = max(len(ids) for ids, _, _ in rows)
        batch = pad_rows([ids for ids, _, _ in rows], [lab for _, lab, _ in rows], width,
                         self.pad_id, left=False)
        if self.image_token is not None:  # never learned, whatever a template writes
            batch["labels"][batch["labels"] == self.image_token] = IGNORE_INDEX
        for key in ("token_type_ids", "mm_token_type_ids"):
            if key in encoded[0]:
                types = torch.zeros_like(batch["input_ids"])
                for row, enc in enumerate(encoded):
                    types[row, :enc[key].shape[1]] = enc[key][0]
                batch[key] = types
        batch.update(image_tensors(encoded))
        return batch

    def prompts(self, examples: list[ImageTextExample]) -> dict[str, torch.Tensor]:
        """The prompts alone, left-padded, for generation."""
        encoded = [self.encode_prompt(e) for e in examples]
        ids = [enc["input_ids"][0].tolist() for enc in encoded]
        batch = pad_rows(ids, None, max(len(i) for i in ids), self.pad_id, left=True)
        for key in ("token_type_ids", "mm_token_type_ids"):
            if key in encoded[0]:
                types = torch.zeros_like(batch["input_ids"])
                for row, enc in enumerate(encoded):
                    types[row, types.shape[1] - enc[key].shape[1]:] = enc[key][0]
                batch[key] = types
        batch.update(image_tensors(encoded))
        return batch


TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")


def pad_rows(ids: list[list[int]], labels: list[list[int]] | None, width: int, pad_id: int,
             left: bool) -> dict[str, torch.Tensor]:
    out = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(out)
    lab = torch.full_like(out, IGNORE_INDEX)
    for row, seq in enumerate(ids):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        out[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
        if labels is not None:
            lab[row, span] = torch.tensor(labels[row], dtype=torch.long)
    batch = {"input_ids": out, "attention_mask": mask}
    if labels is not None:
        batch["labels"] = lab
    return batch


def image_tensors(encoded: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The processor's image outputs of every row, joined along the first dimension; where
    rows' trailing shapes differ (Idefics3's per-row image stacks) padded with zeros."""
    keys = [k for k in encoded[0] if k not in TEXT_KEYS]
    keys += [k for enc in encoded for k in enc if k not in TEXT_KEYS and k not in keys]
    out = {}
    for key in dict.fromkeys(keys):
        parts = [enc[key] for enc in encoded if key in enc and torch.is_tensor(enc[key])]
        if not parts:
            continue
        shape = [max(p.shape[d] for p in parts) for d in range(1, parts[0].dim())]
        padded = []
        for p in parts:
            grow = [x for d in reversed(range(1, p.dim())) for x in (0, shape[d - 1] - p.shape[d])]
            padded.append(torch.nn.functional.pad(p, grow) if any(grow) else p)
        out[key] = torch.cat(padded, dim=0)
    return out

"""The offline vision-language demo: small PNGs of coloured shapes with questions about them
("What colour is the shape?", "What shape is it?"), and a tiny LLaVA-style model built from
configs: a tiny SigLIP vision tower, LLaVA's projector and the demo Llama (its weights and
BPE tokenizer, with an <image> token added), saved with its processor (the PIL image
processor and a chat template that places the images) so a run reads it through the same
AutoProcessor / AutoModelForImageTextToText paths as a user's LLaVA.
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 2468
IMAGE_SIZE, PATCH = 32, 8  # 16 image tokens per image
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 220),
           "yellow": (235, 210, 40), "purple": (140, 60, 170), "orange": (240, 140, 30)}
SHAPES = ("circle", "square", "triangle")
QUESTIONS = {"colour": "What colour is the shape?", "shape": "What shape is it?"}
IMAGE_TOKEN = "<image>"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
VISION_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                "num_attention_heads": 4, "image_size": IMAGE_SIZE, "patch_size": PATCH,
                "vision_use_head": False}


def draw_shape(rng: random.Random, colour: str, shape: str):
    """A 32x32 picture: one shape of the colour, about in the middle (a few pixels either
    way) and of varied size, on a light, slightly varied background."""
    from PIL import Image, ImageDraw

    shade = rng.randint(225, 255)
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (shade, shade, shade))
    size = rng.randint(18, 26)
    left = IMAGE_SIZE // 2 + rng.randint(-2, 2) - size // 2
    top = IMAGE_SIZE // 2 + rng.randint(-2, 2) - size // 2
    box = (left, top, left + size, top + size)
    draw, fill = ImageDraw.Draw(image), COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(left + size // 2, top), (left, top + size), (left + size, top + size)],
                     fill=fill)
    return image


def make_shape_rows(folder: Path, count: int, seed: int = SEED) -> list[dict[str, str]]:
    """count rows, each a new picture written under folder/shapes/ and a question about it;
    the image column holds the path relative to folder (the data file's)."""
    rng = random.Random(seed)
    (folder / "shapes").mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(count):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        name = f"shapes/{n:05d}.png"
        draw_shape(rng, colour, shape).save(folder / name)
        about = rng.choice(list(QUESTIONS))
        rows.append({"image": name, "prompt": QUESTIONS[about],
                     "answer": colour if about == "colour" else shape})
    return rows


def build_vision_model(llama_folder: Path, seed: int = SEED):
    """(model, processor): the demo Llama's weights as the language model of a LLaVA whose
    vision tower and projector are drawn from the seed."""
    import torch
    from transformers import (
        AutoTokenizer,
        LlamaForCausalLM,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        SiglipImageProcessorPil,
        SiglipVisionConfig,
    )

    tokenizer = AutoTokenizer.from_pretrained(llama_folder)
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    tokenizer.chat_template = CHAT_TEMPLATE
    llama = LlamaForCausalLM.from_pretrained(llama_folder)
    torch.manual_seed(seed)
    llama.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    config = LlavaConfig(
        vision_config=SiglipVisionConfig(**VISION_SHAPE), text_config=llama.config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="full", vision_feature_layer=-1,
        image_seq_length=(IMAGE_SIZE // PATCH) ** 2, tie_word_embeddings=False)
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(llama.model.state_dict())
    model.lm_head.load_state_dict(llama.lm_head.state_dict())
    processor = LlavaProcessor(
        image_processor=SiglipImageProcessorPil(size={"height": IMAGE_SIZE,
                                                      "width": IMAGE_SIZE}),
        tokenizer=tokenizer, patch_size=PATCH, vision_feature_select_strategy="full",
        num_additional_image_tokens=0, chat_template=CHAT_TEMPLATE)
    return model, processor


def write_vision(folder: Path, llama_folder: Path) -> Path:
    """folder/: the tiny LLaVA's weights and processor, as save_pretrained writes them."""
    model, processor = build_vision_model(llama_folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder

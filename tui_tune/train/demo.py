"""The offline demo: a BPE tokenizer, a tiny random Llama and a learnable arithmetic dataset;
a WordPiece tokenizer with a tiny random BERT-style encoder, and a learnable tagging (NER) dataset.

No model hub is needed: everything is generated from fixed seeds, saved the way a user's
checkpoint is saved (`save_pretrained`), and read back through the same code paths.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

SEED = 1234
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|prompt|>", "<|answer|>",
                  "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}{{ eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
SYSTEMS = ["You are a calculator.", "Answer with a number.", "Add the two numbers."]
MODEL_SHAPE = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4,
               "num_attention_heads": 4, "num_key_value_heads": 4,
               "max_position_embeddings": 256}


def addition_row(rng: random.Random) -> dict[str, str]:
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    return {"system": rng.choice(SYSTEMS), "prompt": f"What is {a} + {b}?", "answer": str(a + b)}


def make_rows(count: int, seed: int = SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [addition_row(rng) for _ in range(count)]


def preference_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The sums as preference pairs: the right answer is chosen, the classic slip of gluing
    the two numbers together ("12 + 34" -> "1234") is rejected."""
    out = []
    for row in rows:
        a, b = row["prompt"].removeprefix("What is ").removesuffix("?").split(" + ")
        out.append({**row, "rejected_answer": a + b})
    return out


def make_chained_rows(conversations: int, seed: int = SEED + 1) -> list[dict[str, str]]:
    """Two-turn conversations: a sum, then 'Add k to that.' whose answer needs the first turn."""
    rng, rows = random.Random(seed), []
    for n in range(conversations):
        a, b, k = rng.randint(0, 49), rng.randint(0, 49), rng.randint(1, 9)
        first, second = f"c{n}-1", f"c{n}-2"
        rows.append({"id": first, "parent_id": "", "system": "You are a calculator.",
                     "prompt": f"What is {a} + {b}?", "answer": str(a + b)})
        rows.append({"id": second, "parent_id": first, "system": "You are a calculator.",
                     "prompt": f"Add {k} to that.", "answer": str(a + b + k)})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)


def corpus(rows: list[dict[str, str]]) -> list[str]:
    return [f"{r['system']} {r['prompt']} {r['answer']}" for r in rows] + \
        ["Add 5 to that.", "Reverse the word hello.", "the quick brown fox jumps over the lazy dog"]


def build_tokenizer(texts: list[str], vocab_size: int = 512):
    """The demo Llama's BPE, wrapped as a transformers fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    from tui_tune.train.demo_bpe import byte_level_bpe

    core = byte_level_bpe(texts, vocab_size, SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<|pad|>", bos_token="<|bos|>", eos_token="<|eos|>",
        additional_special_tokens=SPECIAL_TOKENS[3:])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer, seed: int = SEED):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False, **MODEL_SHAPE)
    return LlamaForCausalLM(config)


# the encoder: a cased WordPiece vocabulary small enough that most names split into pieces
ENCODER_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ENCODER_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                 "num_attention_heads": 2, "max_position_embeddings": 128}
ENCODER_ALPHABET = list(string.ascii_letters + string.digits + string.punctuation)

# the tagging demo: sentences about people, places and companies from fixed lists, BIO tags
PEOPLE = ["Anna", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hiroshi", "Ingrid",
          "Jonas", "Keiko", "Lucas", "Mei", "Nadia", "Oscar", "Priya", "Quentin", "Rosa",
          "Stefan", "Tariq", "Ulla", "Victor", "Wanda", "Yusuf", "Zoe"]
SURNAMES = ["Berg", "Costa", "Novak", "Okafor", "Petrov", "Schmidt", "Tanaka", "Walsh"]
PLACES = ["Paris", "Berlin", "Lagos", "Lima", "Oslo", "Tokyo", "Madrid", "Nairobi", "Quito",
          "Vienna", "New York", "Buenos Aires", "Hong Kong", "Cape Town", "Kuala Lumpur"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries",
             "Wayne Enterprises", "Blue Harbor Bank"]
TAGGED_TEMPLATES = [
    "{PER} lives in {LOC} .", "{PER} flew from {LOC} to {LOC} yesterday .",
    "{PER} works for {ORG} in {LOC} .", "{ORG} opened an office in {LOC} .",
    "Yesterday {PER} met {PER} at {ORG} .", "The weather in {LOC} was cold .",
    "{PER} said that {ORG} will hire more people .", "We visited {LOC} and then {LOC} .",
    "{ORG} bought a small company from {LOC} .", "Ask {PER} about the trip to {LOC} .",
    "A letter from {PER} arrived today .", "Nobody at {ORG} knows {PER} .",
]


def tagged_row(rng: random.Random) -> dict[str, list[str]]:
    """One sentence as words and BIO tags (a person may carry a surname: B-PER I-PER)."""
    words, tags = [], []
    for part in rng.choice(TAGGED_TEMPLATES).split():
        kind = part[1:-1] if part.startswith("{") else None
        if kind is None:
            words.append(part)
            tags.append("O")
            continue
        name = {"PER": lambda: rng.choice(PEOPLE) + (f" {rng.choice(SURNAMES)}"
                                                      if rng.random() < 0.4 else ""),
                "LOC": lambda: rng.choice(PLACES), "ORG": lambda: rng.choice(COMPANIES)}[kind]()
        pieces = name.split()
        words += pieces
        tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(pieces) - 1)
    return {"tokens": words, "tags": tags}


def make_tagged_rows(count: int, seed: int = SEED + 2) -> list[dict[str, list[str]]]:
    rng = random.Random(seed)
    return [tagged_row(rng) for _ in range(count)]


def build_encoder_tokenizer(texts: list[str], pieces: int = 240):
    """A cased WordPiece tokenizer over `texts` (every ASCII character in it, so no text becomes
    [UNK]), as a BertTokenizer (transformers' fast, `tokenizers`-backed class).

    The pieces are learned with the `tokenizers` BPE trainer and each is allowed both to start
    a word and to continue one ("##" + piece): its WordPiece trainer breaks ties in hash order,
    so two builds would differ, while the plain BPE trainer is reproducible."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer

    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.BertNormalizer(lowercase=False)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=pieces, initial_alphabet=ENCODER_ALPHABET,
                                  show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    learned = sorted(core.get_vocab().items(), key=lambda item: item[1])
    vocab = ENCODER_SPECIALS + [p for p, _ in learned] + [f"##{p}" for p, _ in learned]
    return BertTokenizer(vocab={piece: i for i, piece in enumerate(vocab)}, do_lower_case=False)


def build_encoder_model(tokenizer, seed: int = SEED):
    """A tiny random BERT-style encoder (no head: each problem type's Auto class adds its own)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                        **ENCODER_SHAPE)
    return BertModel(config, add_pooling_layer=False)


def write_encoder(folder: Path, texts: list[str]) -> Path:
    """folder/: the encoder's tokenizer and weights, as save_pretrained writes a checkpoint."""
    tokenizer = build_encoder_tokenizer(texts)
    build_encoder_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def prepare(target: Path, train_rows: int = 4000, chained_conversations: int = 1000,
            tagged_rows: int = 2000, shape_rows: int = 1200) -> Path:
    """Build DIR/model (tokenizer + weights), DIR/encoder (the same for the encoder) and
    DIR/data (train.jsonl, chained.jsonl, ner.jsonl, preference.jsonl (train.jsonl's rows as
    dpo pairs), demo_labels' sentiment.jsonl and weather.jsonl, and demo_qa's qa.jsonl);
    DIR/vision and data/shapes.jsonl with its images (demo_vision)."""
    from tui_tune.train.demo_labels import label_datasets
    from tui_tune.train.demo_qa import qa_rows
    from tui_tune.train.demo_seq2seq import make_number_rows, write_seq2seq

    target = Path(target)
    for name, label_rows in label_datasets().items():
        write_jsonl(target / "data" / name, label_rows)
    rows = make_rows(train_rows)
    write_jsonl(target / "data" / "train.jsonl", rows)
    write_jsonl(target / "data" / "preference.jsonl", preference_rows(rows[:2000]))
    chained = make_chained_rows(chained_conversations)
    write_jsonl(target / "data" / "chained.jsonl", chained)
    tagged = make_tagged_rows(tagged_rows)
    write_jsonl(target / "data" / "ner.jsonl", tagged)
    tokenizer = build_tokenizer(corpus(rows + chained))  # the Llama's: as before the encoder
    model = build_model(tokenizer)
    model.save_pretrained(target / "model")
    tokenizer.save_pretrained(target / "model")
    write_encoder(target / "encoder", corpus(rows + chained) +
                  [" ".join(r["tokens"]) for r in tagged])
    write_jsonl(target / "data" / "qa.jsonl", qa_rows())
    numbers = make_number_rows(3000)  # seq2seq: DIR/seq2seq (a tiny T5), data/numbers.jsonl
    write_jsonl(target / "data" / "numbers.jsonl", numbers)
    write_seq2seq(target / "seq2seq", numbers)
    from tui_tune.train.demo_vision import make_shape_rows, write_vision

    # multimodal: data/shapes.jsonl + data/shapes/*.png, DIR/vision (LLaVA on the demo Llama)
    write_jsonl(target / "data" / "shapes.jsonl", make_shape_rows(target / "data", shape_rows))
    write_vision(target / "vision", target / "model")
    return target

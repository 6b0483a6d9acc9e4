"""Settings for what the model reads: the data files, how rows become tokens, and augmentation."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, field_validator

from tui_tune.config.fields import Group, list_setting, setting

DATA_FORMATS = ("auto", "columns", "messages", "sharegpt", "alpaca")


class Dataset(Group):
    model_config = ConfigDict(title="Dataset")

    train_file: str = setting(
        "", "Training data: a .csv, .parquet or .jsonl file, one example per row; a dataset "
        "folder (datasets' save_to_disk, or a folder of such files); or a Hugging Face dataset "
        "id (org/name, read with train_split, subset and revision).")
    format: Literal[DATA_FORMATS] = setting(  # type: ignore[valid-type]
        "auto", "causal_lm: how rows hold the examples. columns: the prompt and answer columns "
        "below; messages: a 'messages' column of OpenAI chat messages (role and content; "
        "system, then user and assistant turns, each answer learned as chained turns are); "
        "sharegpt: a 'conversations' column of from/value turns; alpaca: instruction, input "
        "and output columns. auto: the prompt/answer columns when the file has them, else "
        "told from its columns (shown before launch).")
    validation_strategy: Literal["auto", "custom"] = setting(
        "auto", "auto: hold out validation_size of the training rows (seeded); custom: read "
        "validation_file.")
    validation_file: str | None = setting(
        None, "Validation data with the same columns as the training file (strategy custom).")
    test_file: str = setting(
        "", "Test data (the seeds' test dataframe): when set, a completed run writes the "
        "model's predictions for every row into its folder (predictions.csv, or .parquet for a "
        "parquet file): every input column plus the predictions. It needs the prompt columns "
        "only (no answers or labels). Empty for none.")
    validation_size: float = setting(
        0.01, "Fraction of training rows held out for validation (strategy auto).",
        gt=0.0, lt=1.0)
    data_sample: float = setting(
        1.0, "Fraction of the training rows to use, for quick trials.", gt=0.0, le=1.0)
    system_column: str | None = setting(
        None, "Column holding a system message put before the prompt; empty for none.")
    prompt_columns: list[str] = list_setting(
        ["prompt"], "Column(s) forming the prompt; several are joined with the separator.",
        min_length=1)
    prompt_column_separator: str = setting(
        "\n\n", "Text placed between several prompt columns.")
    answer_column: str = setting(
        "answer", "Column holding the answer the model learns to write (classification and "
        "regression: the label or target, unless label_columns names several).")
    rejected_answer_column: str = setting(
        "rejected_answer", "dpo: column holding the answer the model learns to prefer less "
        "than answer_column's (H2O's rejected_answer_column).")
    image_column: str = setting(
        "image", "multimodal_causal_lm: column holding the row's image file, or a list of "
        "them, relative to the data file (or absolute); empty for a text-only row. URLs are "
        "refused: everything is read offline.")
    label_columns: list[str] = list_setting(
        [], "Classification and regression: the column(s) to predict; empty reads "
        "answer_column. One column holds a class id (0 to num_classes-1) or a label text; "
        "several make a multilabel problem (one 0/1 column per label) or a regression on "
        "several numbers.")
    num_classes: int = setting(
        0, "Classification: the number of classes; 0 counts them in the training file. 1 is "
        "binary with one output and binary cross-entropy, as in H2O.", ge=0, le=100_000)
    words_column: str = setting(
        "tokens", "Token classification: column holding the words (a list, or a text split "
        "on spaces).")
    tags_column: str = setting(
        "tags", "Token classification: column holding one tag per word (a list of tag texts "
        "or ids, or a text split on spaces, such as BIO tags).")
    label_all_subtokens: bool = setting(
        False, "Token classification: a word cut into several tokens has its tag learned on "
        "every piece; off, only on its first piece (the others are ignored).", advanced=True)
    question_column: str = setting(
        "question", "Extractive QA: column holding the question.")
    context_column: str = setting(
        "context", "Extractive QA: column holding the text the answer is taken from; "
        "answer_column holds the answer as it is written there (empty: the context does not "
        "answer the question, as in SQuAD v2).")
    answer_start_column: str | None = setting(
        None, "Extractive QA: column holding the answer's start offset in the context, in "
        "characters (SQuAD's answer_start); empty: the answer's first occurrence in the "
        "context.")
    doc_stride: int = setting(
        128, "Extractive QA: a context longer than tokenizer.max_length is read in windows; "
        "consecutive windows share this many tokens, so an answer cut by one is whole in the "
        "next.", unit="tokens", ge=0, le=1_048_576, advanced=True)
    id_column: str = setting(
        "id", "Column holding a row id, used with parent_id_column to chain conversations.",
        advanced=True)
    parent_id_column: str | None = setting(
        None, "Column naming the id of the previous turn: rows are chained into multi-turn "
        "conversations. Empty for single-turn data.")
    limit_chained_samples: bool = setting(
        False, "Chained conversations: one example per whole conversation (its last row with "
        "every earlier turn), instead of one per row, where the first turns are examples of "
        "their own too. As H2O's limit_chained_samples.", advanced=True)
    text_system_start: str = setting(
        "<|system|>", "Text put before the system message (without a chat template).",
        advanced=True)
    text_prompt_start: str = setting(
        "<|prompt|>", "Text put before each prompt (without a chat template).")
    text_answer_separator: str = setting(
        "<|answer|>", "Text put between prompt and answer (without a chat template).")
    add_eos_to_system: bool = setting(
        False, "End the system message with the end-of-sequence token (text markers only; "
        "H2O's add_eos_token_to_system, which is on by default there).", advanced=True)
    add_eos_to_prompt: bool = setting(True, "End each prompt with the end-of-sequence token.")
    add_eos_to_answer: bool = setting(
        True, "End each answer with the end-of-sequence token, so the model learns to stop.")
    mask_prompt_labels: bool = setting(
        True, "Learn only from answer tokens: the loss ignores system and prompt tokens.")
    only_last_answer: bool = setting(
        False, "With mask_prompt_labels on chained conversations: learn only the last answer; "
        "the earlier answers are context, as the prompts are. Off: every answer is learned "
        "(H2O's default).")
    use_chat_template: bool = setting(
        False, "Format turns with the tokenizer's chat template instead of the text markers.")
    task_prefix: str = setting(
        "", "Seq2seq: text put before every source (T5 style, e.g. 'translate English to "
        "German: ' or 'summarize: '); empty for none.")
    source_language: str = setting(
        "", "Seq2seq (translation): the source language, recorded, and given to a tokenizer "
        "that takes one (mBART, NLLB, M2M100: its language code, e.g. en_XX).")
    target_language: str = setting(
        "", "Seq2seq (translation): the target language, as source_language; a code the "
        "tokenizer knows also starts every generated output (mBART, NLLB).")

    train_split: str = setting(
        "train", "The split of a hub dataset or dataset folder that train_file names.")
    validation_split: str = setting(
        "validation", "The split of a hub dataset or dataset folder that validation_file "
        "names (strategy custom).")
    test_split: str = setting(
        "test", "The split of a hub dataset or dataset folder that test_file names.",
        advanced=True)
    subset: str = setting(
        "", "A hub dataset's subset (its configuration name, e.g. 'main'); empty: its "
        "default.")
    revision: str = setting(
        "", "A hub dataset's revision (branch, tag or commit); empty: main.", advanced=True)

    @field_validator("prompt_columns", "label_columns", mode="before")
    @classmethod
    def _one_string_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class Tokenizer(Group):
    model_config = ConfigDict(title="Tokenizer")

    max_length: int = setting(
        512, "Longest sequence in tokens (prompt + answer); longer ones are cut as "
        "truncation_side says. Generation is given the prompt's last max_length tokens.",
        unit="tokens", ge=8, le=1_048_576)
    max_target_length: int = setting(
        128, "Seq2seq: longest target in tokens (tokenizer.max_length is the source's); both "
        "lose their end when longer.", unit="tokens", ge=1, le=1_048_576)
    truncation_side: Literal["left", "right"] = setting(
        "left", "Which end of an over-long example is cut. left (H2O): the beginning, so system, "
        "earlier turns and then the prompt go first and the answer stays (an answer longer than "
        "max_length by itself keeps its start); right: the end, so the prompt stays whole and "
        "the answer loses its end.", advanced=True)
    add_prompt_answer_tokens: bool = setting(
        False, "Add the prompt/answer marker texts as new special tokens (the embedding matrix "
        "grows, so unfreeze embed_tokens and lm_head with an adapter).", advanced=True)
    padding_quantile: float = setting(
        1.0, "Pad each batch to this quantile of its lengths (longer rows are cut): 1.0 keeps "
        "every token, 0.95 trims outliers.", ge=0.1, le=1.0)
    padding_side: Literal["right", "left"] = setting(
        "right", "Side padding goes on in training batches (generation always pads left).",
        advanced=True)
    image_size: int = setting(
        0, "multimodal_causal_lm: the side images are resized to, in pixels (the image "
        "processor's size); 0 keeps the processor's default. Only for vision towers that take "
        "any size (Qwen2-VL, Idefics3); LLaVA's CLIP/SigLIP tower needs the size it was "
        "trained at.", unit="px", ge=0, le=8192)
    max_image_tokens: int = setting(
        0, "multimodal_causal_lm: most tokens one image may become, for processors that size "
        "images by their pixels (Qwen2-VL's max_pixels); 0 keeps the processor's default. "
        "Processors with a fixed count per image (LLaVA) ignore it.", unit="tokens", ge=0,
        le=1_048_576, advanced=True)
    image_resize: Literal["processor", "pad", "crop"] = setting(
        "processor", "multimodal_causal_lm: how an image is made square before the processor "
        "sees it. processor: not at all (the processor resizes, stretching if it must); pad: "
        "padded to a square with the processor's mean colour (LLaVA-1.5); crop: its centre "
        "square.", advanced=True)


class Augmentation(Group):
    model_config = ConfigDict(title="Augmentation")

    token_mask_probability: float = setting(
        0.0, "Chance that an input token is replaced by a random one (labels are untouched).",
        ge=0.0, le=0.9)
    skip_parent_probability: float = setting(
        0.0, "Chained conversations: chance of dropping a previous turn from the context.",
        ge=0.0, le=1.0)
    random_parent_probability: float = setting(
        0.0, "Chained conversations: chance of replacing the previous turn by a random row.",
        ge=0.0, le=1.0)
    neftune_noise_alpha: float = setting(
        0.0, "NEFTune: uniform noise on input embeddings while training, scaled by "
        "alpha / sqrt(length * dim). 5 is a usual value; 0 turns it off.", ge=0.0, le=100.0)




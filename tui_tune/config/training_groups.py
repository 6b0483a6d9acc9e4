"""Settings for how the model learns (optimizer, schedule, checkpoints) and how it is judged."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from tui_tune.config.fields import Group, list_setting, setting
from tui_tune.config.problem_types import ALL_METRICS

OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop", "adadelta",
              "paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit")
BNB_OPTIMIZERS = ("paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit")
MAX_STEPS = 100_000_000  # over three years at a step a second: anything more is a typo


class Training(Group):
    model_config = ConfigDict(title="Training")

    loss: Literal["token_avg_ce", "sample_avg_ce"] = setting(
        "token_avg_ce", "Cross-entropy averaged over all answer tokens of a batch, or first per "
        "sample then over samples (short answers weigh as much as long ones).")
    regression_loss: Literal["mse", "mae", "huber"] = setting(
        "mse", "Regression: mean squared error, mean absolute error, or Huber (squared near "
        "the target, absolute far from it).")
    class_weights: list[float] = list_setting(
        [], "Classification: a weight per class in the loss, in class order (for multilabel, "
        "per label: the weight of its positive cases); empty weighs all alike.")
    dpo_loss: Literal["sigmoid", "ipo", "hinge", "kto_pair"] = setting(
        "sigmoid", "dpo: the preference loss, named as TRL names them (H2O's DPOLoss, IPOLoss, "
        "HingeLoss, KTOPairLoss). sigmoid is DPO; ipo regresses the length-averaged margin to "
        "1/(2 beta); hinge stops pushing at a margin of 1/beta; kto_pair scores each answer "
        "against the other's KL estimate.")
    beta: float = setting(
        0.1, "dpo, grpo: how far the model may move from the reference (the backbone as it "
        "started): higher keeps it closer. IPO's tau; grpo's KL weight (0 turns it off).",
        ge=0.0, le=100.0)
    label_smoothing: float = setting(
        0.0, "dpo (sigmoid loss): the chance that a pair's preference is wrong (conservative "
        "DPO); 0 trusts every pair.", ge=0.0, lt=0.5)
    precompute_reference: bool = setting(
        False, "dpo: compute the reference model's log-probabilities of every pair once before "
        "training and keep them in the run folder (a resume reuses them): a step then runs "
        "one model instead of two.")
    reward_functions: list[str] = list_setting(
        ["exact_match"], "grpo: what scores a completion: built-ins exact_match (the answer "
        "column, normalised; numbers as numbers), format (matches reward_pattern), length "
        "(minus the completion's share of max_completion_length), or 'module:function' from "
        "the working directory, called with (prompts, completions, rows) and returning floats.")
    reward_weights: list[float] = list_setting(
        [], "grpo: a weight per reward function, in order; empty weighs all 1.")
    reward_pattern: str = setting(
        r"^\s*-?\d+(\.\d+)?\s*$", "grpo: the regular expression the format reward looks for "
        "(Python re.search): 1 when the completion matches, else 0.")
    num_generations: int = setting(
        4, "grpo: completions sampled per prompt (a group); advantages compare them.",
        ge=2, le=256)
    max_completion_length: int = setting(
        32, "grpo: the most tokens a sampled completion has.", unit="tokens", ge=1, le=65536)
    epsilon: float = setting(
        0.2, "grpo: how far a step may move a token's probability ratio from the sampling "
        "policy's (PPO's clip).", gt=0.0, lt=1.0)
    num_iterations: int = setting(
        1, "grpo: optimizer steps on each batch of sampled completions (TRL's mu).",
        ge=1, le=64)
    sampling_temperature: float = setting(
        1.0, "grpo: the temperature completions are sampled at.", gt=0.0, le=10.0)
    sampling_top_p: float = setting(
        1.0, "grpo: nucleus sampling of completions (1 keeps every token).", gt=0.0, le=1.0)
    optimizer: Literal[OPTIMIZERS] = setting(  # type: ignore[valid-type]
        "adamw", "adamw is the safe default. paged_* and adamw_8bit come from bitsandbytes and "
        "save optimizer memory on GPUs.")
    lr: float = setting(1e-4, "Peak learning rate, reached after warmup.", gt=0.0, le=1.0)
    differential_lr: dict[str, float] = Field(
        default_factory=dict, description="Other learning rates for parameters whose name "
        "contains a pattern, for example { lm_head = 1e-5 }.",
        json_schema_extra={"advanced": True})
    betas: list[float] = list_setting(
        [0.9, 0.999], "Adam betas: momentum and second-moment decay.", min_length=2, max_length=2,
        advanced=True)
    eps: float = setting(1e-8, "Adam epsilon.", gt=0.0, le=1.0, advanced=True)
    momentum: float = setting(0.0, "SGD / RMSprop momentum.", ge=0.0, lt=1.0, advanced=True)
    weight_decay: float = setting(
        0.0, "Decoupled weight decay; never applied to biases and norm weights.", ge=0.0, le=1.0)
    grad_clip: float = setting(
        1.0, "Clip the global gradient norm to this value; 0 turns clipping off.", ge=0.0)
    grad_accumulation: int = setting(
        1, "Batches whose gradients are summed before one optimizer step.", ge=1, le=4096)
    batch_size: int = setting(
        2, "Sequences per device per forward pass.", unit="sequences", ge=1, le=65536)
    epochs: float = setting(1.0, "Passes over the training data (fractions allowed).",
                            unit="epochs", gt=0.0, le=10_000)
    max_steps: int | None = setting(
        None, "Stop after this many optimizer steps; overrides epochs when set.",
        unit="steps", ge=1, le=MAX_STEPS)
    schedule: Literal["constant", "cosine", "linear"] = setting(
        "cosine", "Learning-rate curve after warmup.")
    warmup_epochs: float = setting(
        0.0, "Linear warmup length in epochs (fractions allowed). Use this or warmup_ratio.",
        unit="epochs", ge=0.0)
    warmup_ratio: float = setting(
        0.03, "Linear warmup length as a fraction of all steps. Use this or warmup_epochs.",
        ge=0.0, lt=1.0)
    min_lr_ratio: float = setting(
        0.0, "Floor of the decaying schedule, as a fraction of lr.", ge=0.0, lt=1.0)
    save_checkpoint: Literal["last", "best", "each_evaluation", "disable"] = setting(
        "last", "Which checkpoints to keep: the last one, the one with the best validation "
        "loss, one per evaluation, or none (final weights are saved whatever you pick).")
    checkpoint_every_steps: int | None = setting(
        None, "Also save a resumable checkpoint every N optimizer steps.", unit="steps", ge=1)
    keep_checkpoints: int = setting(
        2, "How many checkpoints to keep on disk; older ones are deleted.", ge=1, le=1000)
    eval_every_epochs: float = setting(
        1.0, "Evaluate every N epochs (fractions allowed).", unit="epochs", gt=0.0)
    eval_every_steps: int | None = setting(
        None, "Evaluate every N optimizer steps instead; overrides eval_every_epochs.",
        unit="steps", ge=1)
    evaluate_before_training: bool = setting(
        False, "Run one evaluation before the first step, as a baseline.")
    train_on_validation: bool = setting(
        False, "Also train on the validation rows (for a final model; validation loss then "
        "stops meaning much).", advanced=True)
    packing: bool = setting(
        False, "Pack several short sequences into one row without padding; attention is kept "
        "within each sequence.")
    group_by_length: bool = setting(
        False, "Batch sequences of similar length together: less padding, faster epochs.")


# the LLM judge's built-in templates (their texts: train/judge.py) and what a template holds
JUDGE_TEMPLATES = ("general", "mt-bench")
JUDGE_PLACEHOLDERS = ("{_PROMPT}", "{_TARGET_TEXT}", "{_PREDICTED_TEXT}")


class Prediction(Group):
    model_config = ConfigDict(title="Prediction")

    metric: Literal[ALL_METRICS] = setting(  # type: ignore[valid-type]
        "perplexity", "Validation metric besides the loss, charted and compared. causal_lm: "
        "perplexity, bleu (generates answers, slower) or none; classification: accuracy, auc, "
        "logloss or f1 (macro); regression: mse, mae or r2; token_classification: f1 (entity "
        "level) or accuracy; extractive_qa: f1 or exact_match; dpo: preference_accuracy or "
        "reward_margin; seq2seq: rougeL, rouge1, rouge2, bleu, chrf (on generated outputs) or "
        "perplexity. Every metric of the type is written to each eval event. causal_lm also "
        "llm_judge: an OpenAI-compatible model scores each validation answer against its "
        "reference (prediction.judge_*); or exact_match: the share of validation answers "
        "generated exactly as their reference (both stripped), shown as '247 of 300 exact'.")
    max_new_tokens: int = setting(256, "Longest generated answer.", unit="tokens", ge=1)
    min_new_tokens: int = setting(1, "Shortest generated answer.", unit="tokens", ge=0)
    batch_size: int = setting(
        8, "Prompts generated at once during evaluation; 0 takes training.batch_size (H2O's "
        "0).", ge=0)
    do_sample: bool = setting(False, "Sample tokens instead of always taking the likeliest.")
    num_beams: int = setting(1, "Beam search width; 1 is greedy or plain sampling.", ge=1, le=64)
    temperature: float = setting(
        0.7, "With do_sample: lower is more deterministic; 0 always takes the likeliest token "
        "(as do_sample off).", ge=0.0, le=10.0)
    repetition_penalty: float = setting(
        1.0, "Above 1 discourages repeating tokens already written.", ge=1.0, le=10.0)
    top_k: int = setting(0, "With do_sample: keep only the k likeliest tokens; 0 keeps all.", ge=0)
    top_p: float = setting(
        1.0, "With do_sample: keep the smallest set of tokens whose probability reaches p.",
        gt=0.0, le=1.0)
    stop_strings: list[str] = list_setting(
        [], "Generation stops when one of these texts appears.")
    max_time: float = setting(
        0.0, "Stop generating after this many seconds per batch of prompts, however many "
        "tokens are written; 0 sets no limit.", unit="s", ge=0.0, advanced=True)
    num_samples: int = setting(
        4, "Validation prompts shown with their generation at each evaluation.", ge=0, le=64)
    max_answer_length: int = setting(
        30, "Extractive QA: longest answer span predicted.", unit="tokens", ge=1)
    judge_base_url: str = setting(
        "", "metric llm_judge: the judge's OpenAI-compatible base URL, e.g. "
        "https://api.openai.com/v1, or http://127.0.0.1:8000/v1 from `tui-tune serve-model`.")
    judge_model: str = setting(
        "", "metric llm_judge: the judge's model name (the request's `model`); empty leaves "
        "it out, for a server with one model.")
    judge_api_key_env: str = setting(
        "", "metric llm_judge: the environment variable holding the judge's API key (the key "
        "itself is never stored); empty sends none.")
    judge_template: str = setting(
        "general", "metric llm_judge: general (H2O's: scores 0 to 1), mt-bench (MT-bench's "
        "reference grading: 1 to 10), or a text file with {_PROMPT}, {_TARGET_TEXT} and "
        "{_PREDICTED_TEXT} whose judge ends its reply with SCORE: <number>. The metric is "
        "the mean score on the template's scale.")
    judge_concurrency: int = setting(
        4, "metric llm_judge: requests to the judge at once.", ge=1, le=64, advanced=True)
    judge_max_requests: int = setting(
        100, "metric llm_judge: the first this many validation rows are judged at each "
        "evaluation (a cap on what one evaluation costs).", ge=1, advanced=True)
    judge_retries: int = setting(
        3, "metric llm_judge: retries of a request that failed (connection, timeout, 429, "
        "5xx), waiting 1, 2, 4... s between them.", ge=0, le=10, advanced=True)
    judge_timeout: float = setting(
        120.0, "metric llm_judge: seconds one judge request may take.", unit="s", gt=0.0,
        advanced=True)

    @field_validator("stop_strings", mode="before")
    @classmethod
    def _one_string_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def decoding(self) -> dict:
        """The decoding a chat or a served answer starts from: the run's own, temperature 0
        (greedy) where it does not sample. serve-model, `tui-tune chat` and the chat screen
        all start here."""
        return {"temperature": self.temperature if self.do_sample else 0.0,
                "top_p": self.top_p, "top_k": self.top_k, "max_new_tokens": self.max_new_tokens,
                "repetition_penalty": self.repetition_penalty, "stop": list(self.stop_strings)}

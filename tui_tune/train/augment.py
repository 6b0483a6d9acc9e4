"""Training-time augmentation: random token replacement and NEFTune embedding noise.

Both act only while the model trains; evaluation and generation see clean inputs.
"""

from __future__ import annotations

import torch
from torch import nn


def mask_random_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, probability: float,
                       vocab_size: int, generator: torch.Generator | None = None,
                       protected: torch.Tensor | None = None) -> torch.Tensor:
    """Replace each real input token with a random one with `probability`; labels untouched.

    `protected` marks positions never replaced (for example the first token of a sequence).
    """
    if probability <= 0:
        return input_ids
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    replace = (draw < probability) & attention_mask.bool()
    if protected is not None:
        replace &= ~protected.bool()
    random_ids = torch.randint(0, vocab_size, input_ids.shape, generator=generator,
                               device=input_ids.device)
    return torch.where(replace, random_ids, input_ids)


class NEFTuneHook:
    """Uniform noise on input embeddings, scaled by alpha / sqrt(length * dim), in train mode.

    Jain et al., 2023 ("NEFTune"). Registered as a forward hook on the embedding layer, so
    it follows the model through peft wrapping and accelerate's DDP without touching them.
    """

    def __init__(self, alpha: float):
        self.alpha = alpha

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        if not module.training or self.alpha <= 0:
            return output
        length, dim = output.shape[-2], output.shape[-1]
        scale = self.alpha / (length * dim) ** 0.5
        return output + torch.zeros_like(output).uniform_(-scale, scale)


def add_neftune(model: nn.Module, alpha: float) -> torch.utils.hooks.RemovableHandle | None:
    if alpha <= 0:
        return None
    return model.get_input_embeddings().register_forward_hook(NEFTuneHook(alpha))

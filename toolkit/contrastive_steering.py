"""Contrastive steering vectors: the mean activation difference between two prompt sets.

    v = contrastive_steering_vector(model, tokenizer,
                                    positive_prompts=["I love this", "What a joy"],
                                    negative_prompts=["I hate this", "What a pain"],
                                    layer=6)
    v.shape   # [d_model]
    with steering_hook(model, 6, v, scale=4.0): ...

`contrastive_steering_vector(model, tokenizer, positive_prompts, negative_prompts, layer,
position=-1, batch_size=8, normalize=False)`: mean over the positive prompts of block
`layer`'s output at `position` (default the last token) minus the same mean over the negative
prompts. Prompts are strings or chats. Returns a float32 CPU tensor [d_model]; with
`normalize=True` it is scaled to unit norm. Contrast pairs that differ only in the concept
you care about give the cleanest vectors.
Mounted alone (`Library::from_file("toolkit/contrastive_steering.py")`), seer installs the
sibling modules it imports beside it.
"""

from typing import Any, Sequence

import torch

try:
    from .extract_activations import extract_activations
except ImportError:  # mounted as single modules rather than the `toolkit` package
    from extract_activations import extract_activations


def contrastive_steering_vector(
    model: Any,
    tokenizer: Any,
    positive_prompts: Sequence[Any],
    negative_prompts: Sequence[Any],
    layer: int,
    position: int = -1,
    batch_size: int = 8,
    normalize: bool = False,
) -> torch.Tensor:
    """mean(activations of positive prompts) - mean(activations of negative prompts), [d_model]."""
    if isinstance(positive_prompts, str) or isinstance(negative_prompts, str):
        raise TypeError("give lists of prompts (a single string is not a list)")
    pos = extract_activations(model, tokenizer, list(positive_prompts), layer, position, batch_size)
    neg = extract_activations(model, tokenizer, list(negative_prompts), layer, position, batch_size)
    # A single chat (not a list of prompts) comes back without the prompt axis.
    pos = pos.unsqueeze(0) if pos.ndim == 1 else pos
    neg = neg.unsqueeze(0) if neg.ndim == 1 else neg
    vector = pos.mean(0) - neg.mean(0)
    if normalize:
        vector = vector / vector.norm().clamp(min=1e-12)
    return vector

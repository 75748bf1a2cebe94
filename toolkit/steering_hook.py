"""Steering: add a vector to a layer's output while the model runs.

    with steering_hook(model, layer=6, vector=v, start_position=0, scale=4.0):
        out = model.generate(**inputs, max_new_tokens=30)   # steered
    # leaving the block removes the hooks, also when the body raised

`steering_hook(model, layer, vector, start_position=0, scale=1.0)` is a context manager that
adds `scale * vector` (shape [d_model]) to the residual stream output of decoder block
`layer` (negative counts from the end) at every token whose position in its prompt is
>= `start_position` (0 = steer every token; e.g. the prompt length = only generated
tokens). Positions are counted on real tokens, so left padding and generation with a KV
cache are handled: a generated token's position continues from the prompt. Padding tokens
are never touched. Several hooks can be nested (on the same or different layers).
Works for forward passes and `model.generate`, PEFT-wrapped models included.
Mounted alone (`Library::from_file("toolkit/steering_hook.py")`), seer installs the
sibling modules it imports beside it.
"""

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import torch

try:
    from .model_layout import get_layout, layer_index, layer_output_tensor, replace_layer_output
except ImportError:  # mounted as single modules rather than the `toolkit` package
    from model_layout import get_layout, layer_index, layer_output_tensor, replace_layer_output


def _token_positions(args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    """Position of each token of this forward call within its sequence [batch, seq], with
    -1 for padding; None when it cannot be told (then every position counts from 0)."""
    ids = kwargs.get("input_ids")
    if ids is None and args and isinstance(args[0], torch.Tensor):
        ids = args[0]
    embeds = kwargs.get("inputs_embeds")
    if ids is not None:
        batch, seq = ids.shape[0], ids.shape[1]
        device = ids.device
    elif embeds is not None:
        batch, seq = embeds.shape[0], embeds.shape[1]
        device = embeds.device
    else:
        return None
    mask = kwargs.get("attention_mask")
    if isinstance(mask, torch.Tensor) and (mask.ndim != 2 or mask.shape[1] < seq):
        mask = None
    pos = kwargs.get("position_ids")
    if isinstance(pos, torch.Tensor) and pos.ndim == 2 and pos.shape[-1] == seq:
        pos = pos.expand(batch, -1).to(device).long()
    elif mask is not None:
        pos = mask.long().cumsum(-1)[:, -seq:] - 1
    else:
        offset = 0
        cache_pos = kwargs.get("cache_position")
        past = kwargs.get("past_key_values")
        if isinstance(cache_pos, torch.Tensor) and cache_pos.numel() > 0:
            offset = int(cache_pos.reshape(-1)[0])
        elif past is not None and hasattr(past, "get_seq_length"):
            offset = int(past.get_seq_length())
        pos = (torch.arange(seq, device=device) + offset).unsqueeze(0).expand(batch, -1)
    if mask is not None:
        pos = pos.masked_fill(mask[:, -seq:].to(device) == 0, -1)
    return pos


@contextmanager
def steering_hook(
    model: Any,
    layer: int,
    vector: torch.Tensor,
    start_position: int = 0,
    scale: float = 1.0,
) -> Iterator[None]:
    """Adds `scale * vector` to block `layer`'s output at token positions >= `start_position`
    while the `with` block runs; hooks are removed on exit, even on an exception."""
    layout = get_layout(model)
    idx = layer_index(layout, layer)
    vector = torch.as_tensor(vector).detach().reshape(-1)
    if start_position < 0:
        raise ValueError("start_position must be >= 0 (0 steers every token)")
    state = {"positions": None}

    def pre_hook(_module, args, kwargs):
        state["positions"] = _token_positions(args, kwargs)

    def hook(_module, _inputs, output):
        hidden = layer_output_tensor(output)
        if vector.shape[0] != hidden.shape[-1]:
            raise ValueError(
                f"steering vector has {vector.shape[0]} dims but layer {idx} has {hidden.shape[-1]}"
            )
        batch, seq = hidden.shape[0], hidden.shape[1]
        pos = state["positions"]
        if pos is None or tuple(pos.shape) != (batch, seq):
            pos = torch.arange(seq, device=hidden.device).unsqueeze(0).expand(batch, -1)
        where = (pos.to(hidden.device) >= start_position).unsqueeze(-1).to(hidden.dtype)
        add = (scale * vector).to(device=hidden.device, dtype=hidden.dtype)
        return replace_layer_output(output, hidden + where * add)

    handles = [
        layout.model.register_forward_pre_hook(pre_hook, with_kwargs=True),
        layout.layers[idx].register_forward_hook(hook),
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def create_steering_hook(model: Any, layer_idx: int, vector: torch.Tensor, strength: float = 1.0, start_pos: int = 0):
    """Seer's name and signature: a context manager adding `strength * vector` to block
    `layer_idx`'s output from token `start_pos` on. Same as `steering_hook(model, layer_idx,
    vector, start_position=start_pos, scale=strength)`: positions count real tokens of
    the prompt, so generation with a KV cache keeps steering the new tokens."""
    return steering_hook(model, layer_idx, vector, start_position=start_pos, scale=strength)

"""Residual-stream activations of a decoder model at chosen layers and token positions.

    acts = extract_activations(model, tokenizer, ["The capital of France is"], layers=[0, -1])
    acts.shape  # [1, 2, d_model]: prompts x layers x hidden (positions=-1 is an int)

`extract_activations(model, tokenizer, prompts_or_chats, layers, positions=-1, batch_size=8,
add_generation_prompt=True)`:
  - `prompts_or_chats`: a string, a chat (list of {"role", "content"} dicts, rendered with the
    tokenizer's chat template), or a list of them.
  - `layers`: an int or a list of ints; layer i is the OUTPUT of decoder block i (the residual
    stream after it); negative indices count from the end (-1 = last block, before the final
    norm).
  - `positions`: an int or a list of ints, token positions within each prompt (0 = first
    token, -1 = last); padding is handled, so a position means the same token as if the
    prompt ran alone.
Returns a float32 CPU tensor of shape [n_prompts, n_layers, n_positions, d_model]; the layer
axis is dropped when `layers` is an int, the position axis when `positions` is an int, and
the prompt axis when a single prompt or chat (not a list) is given.
Works on Llama/Gemma/Qwen/GPT-2-style models, PEFT-wrapped or not (LoRA stays active).
Mounted alone (`Library::from_file("toolkit/extract_activations.py")`), seer installs the
sibling modules it imports beside it.
"""

from typing import Any, List, Sequence, Union

import torch

try:
    from .model_layout import get_layout, layer_index, layer_output_tensor, model_device
    from .prompts import encode_batch, format_prompts, resolve_position
except ImportError:  # mounted as single modules rather than the `toolkit` package
    from model_layout import get_layout, layer_index, layer_output_tensor, model_device
    from prompts import encode_batch, format_prompts, resolve_position


def _as_int_list(x: Union[int, Sequence[int]], what: str) -> List[int]:
    if isinstance(x, int) and not isinstance(x, bool):
        return [x]
    items = list(x)
    if not items:
        raise ValueError(f"no {what} given")
    return items


@torch.no_grad()
def extract_activations(
    model: Any,
    tokenizer: Any,
    prompts_or_chats: Any,
    layers: Union[int, Sequence[int]],
    positions: Union[int, Sequence[int]] = -1,
    batch_size: int = 8,
    add_generation_prompt: bool = True,
) -> torch.Tensor:
    """Residual-stream activations [n_prompts, n_layers, n_positions, d_model] (see the
    module docstring for the axes dropped when an int or a single prompt is given)."""
    layout = get_layout(model)
    layer_list = [layer_index(layout, l) for l in _as_int_list(layers, "layers")]
    pos_list = _as_int_list(positions, "positions")
    texts, chats, single = format_prompts(
        tokenizer, prompts_or_chats, add_generation_prompt=add_generation_prompt
    )
    device = model_device(model)
    wanted = sorted(set(layer_list))
    out_rows = []
    for start in range(0, len(texts), max(1, batch_size)):
        batch = encode_batch(
            tokenizer, texts[start:start + batch_size], chats[start:start + batch_size], device
        )
        width = batch["input_ids"].shape[1]
        cols = torch.tensor(
            [[resolve_position(p, n, width) for p in pos_list] for n in batch["lengths"]],
            device=device,
        )  # [batch, n_positions]
        captured = {}

        def make_hook(idx):
            def hook(_module, _inputs, output):
                hidden = layer_output_tensor(output)
                index = cols.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
                captured[idx] = hidden.gather(1, index).detach().float().cpu()

            return hook

        handles = [layout.layers[i].register_forward_hook(make_hook(i)) for i in wanted]
        try:
            model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"],
                use_cache=False,
            )
        finally:
            for h in handles:
                h.remove()
        out_rows.append(torch.stack([captured[i] for i in layer_list], dim=1))
    result = torch.cat(out_rows, dim=0)  # [n, L, P, d]
    if isinstance(positions, int):
        result = result[:, :, 0]
    if isinstance(layers, int):
        result = result[:, 0]
    if single:
        result = result[0]
    return result


def extract_activation(model: Any, tokenizer: Any, text: Any, layer_idx: int, position: int = -1) -> torch.Tensor:
    """Seer's name and signature: the activation [d_model] after decoder block `layer_idx`
    (negative from the end) at token `position` (negative from the end) of one prompt or
    chat, on the CPU. Same as `extract_activations(model, tokenizer, text, layer_idx,
    position)`, which returns it as float32 (Seer's keeps the model's dtype). For the
    last block Seer's (`hidden_states[-1]`) has the model's final norm applied; this is the
    block's own output, like every other layer."""
    return extract_activations(model, tokenizer, text, int(layer_idx), int(position)).cpu()

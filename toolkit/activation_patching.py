"""Activation patching: which layers carry the information that separates two prompts?

    r = activation_patching(model, tokenizer,
                            clean_prompt="The Eiffel Tower is in the city of",
                            corrupt_prompt="The Colosseum is in the city of",
                            layers=range(model.config.num_hidden_layers))
    print(r)            # per layer: how much of the clean answer's logit the patch restores
    r.recovered         # list of floats, 1.0 = the patch fully restores the clean answer

`activation_patching(model, tokenizer, clean_prompt, corrupt_prompt, layers, position=-1,
target_token=None)`: runs the clean prompt and records each chosen block's output at
`position` (a token index in that prompt, negative from the end); then, for each layer
separately, runs the corrupt prompt with that block's output at `position` (of the corrupt
prompt) replaced by the clean one, and reads the logits at the corrupt prompt's last token.
Prompts are strings or chats. The measured token is `target_token` (an id or a string of
one token), by default the clean run's top prediction.
Returns a `PatchingResult`: `layers`, `clean_logits` and `corrupt_logits` [vocab],
`patched_logits` [n_layers, vocab] (float32, CPU), `target_id`, `target_token`,
`logit_diff` (patched minus corrupt logit of the target, per layer) and `recovered`
((patched - corrupt) / (clean - corrupt) per layer; nan when clean == corrupt).
Patching the last layer at the last position reproduces the clean logits exactly.
Mounted alone (`Library::from_file("toolkit/activation_patching.py")`), seer installs the
sibling modules it imports beside it.
"""

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Union

import torch

try:
    from .model_layout import (
        get_layout, layer_index, layer_output_tensor, model_device, replace_layer_output,
    )
    from .prompts import encode_batch, format_prompts, resolve_position
except ImportError:  # mounted as single modules rather than the `toolkit` package
    from model_layout import (
        get_layout, layer_index, layer_output_tensor, model_device, replace_layer_output,
    )
    from prompts import encode_batch, format_prompts, resolve_position


@dataclass
class PatchingResult:
    """The effect of patching each layer; `str()`/`repr()` show a table."""

    layers: List[int]
    clean_logits: torch.Tensor
    corrupt_logits: torch.Tensor
    patched_logits: torch.Tensor
    target_id: int
    target_token: str
    logit_diff: List[float]
    recovered: List[float]

    def __repr__(self) -> str:
        clean = float(self.clean_logits[self.target_id])
        corrupt = float(self.corrupt_logits[self.target_id])
        lines = [
            f"target {self.target_token!r} (id {self.target_id}): clean logit {clean:.3f}, "
            f"corrupt logit {corrupt:.3f}",
            "layer  patched-corrupt  recovered",
        ]
        for layer, d, r in zip(self.layers, self.logit_diff, self.recovered):
            lines.append(f"{layer:>5}  {d:>15.3f}  {r:>9.3f}")
        return "\n".join(lines)

    __str__ = __repr__


def _encode_one(tokenizer: Any, prompt: Any, device: Any) -> dict:
    texts, chats, _ = format_prompts(tokenizer, prompt)
    if len(texts) != 1:
        raise TypeError("give one prompt (a string or a chat), not a list")
    return encode_batch(tokenizer, texts, chats, device)


def _run(model: Any, batch: dict) -> torch.Tensor:
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        use_cache=False,
    )
    return out.logits[0, -1].float().cpu()


@torch.no_grad()
def activation_patching(
    model: Any,
    tokenizer: Any,
    clean_prompt: Any,
    corrupt_prompt: Any,
    layers: Sequence[int],
    position: int = -1,
    target_token: Optional[Union[int, str]] = None,
) -> PatchingResult:
    """Patches the clean run's block outputs at `position` into the corrupt run, one layer
    at a time, and reports the effect on the next-token logits."""
    layout = get_layout(model)
    layer_list = [layer_index(layout, l) for l in ([layers] if isinstance(layers, int) else layers)]
    device = model_device(model)
    clean = _encode_one(tokenizer, clean_prompt, device)
    corrupt = _encode_one(tokenizer, corrupt_prompt, device)
    clean_col = resolve_position(position, clean["lengths"][0], clean["input_ids"].shape[1])
    corrupt_col = resolve_position(position, corrupt["lengths"][0], corrupt["input_ids"].shape[1])

    saved = {}

    def save_hook(idx):
        def hook(_m, _i, output):
            saved[idx] = layer_output_tensor(output)[:, clean_col].detach().clone()

        return hook

    handles = [layout.layers[i].register_forward_hook(save_hook(i)) for i in set(layer_list)]
    try:
        clean_logits = _run(model, clean)
    finally:
        for h in handles:
            h.remove()
    corrupt_logits = _run(model, corrupt)

    patched = []
    for idx in layer_list:

        def patch_hook(_m, _i, output, idx=idx):
            hidden = layer_output_tensor(output).clone()
            hidden[:, corrupt_col] = saved[idx].to(hidden.dtype)
            return replace_layer_output(output, hidden)

        handle = layout.layers[idx].register_forward_hook(patch_hook)
        try:
            patched.append(_run(model, corrupt))
        finally:
            handle.remove()
    patched_logits = torch.stack(patched) if patched else torch.empty(0, clean_logits.shape[0])

    if target_token is None:
        target_id = int(clean_logits.argmax())
    elif isinstance(target_token, str):
        ids = tokenizer(target_token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"target_token {target_token!r} is {len(ids)} tokens; give one token")
        target_id = int(ids[0])
    else:
        target_id = int(target_token)
    c, k = float(clean_logits[target_id]), float(corrupt_logits[target_id])
    diffs = [float(p[target_id]) - k for p in patched_logits]
    recovered = [d / (c - k) if c != k else float("nan") for d in diffs]
    return PatchingResult(
        layers=layer_list,
        clean_logits=clean_logits,
        corrupt_logits=corrupt_logits,
        patched_logits=patched_logits,
        target_id=target_id,
        target_token=tokenizer.decode([target_id]),
        logit_diff=diffs,
        recovered=recovered,
    )

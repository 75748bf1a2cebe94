"""Logit lens: what each layer's residual stream would predict if decoding stopped there.

    lens = logit_lens(model, tokenizer, "The Eiffel Tower is in the city of", top_k=5)
    print(lens)                 # one line per layer: top tokens with probabilities
    lens.logits.shape           # [n_layers, vocab]
    lens.top_tokens[-1]         # the last layer's top-5 strings (= the model's own prediction)

`logit_lens(model, tokenizer, prompt, layers=None, top_k=5, position=-1)`:
  - `prompt`: a string or a chat (list of {"role", "content"} dicts, template applied);
  - `layers`: list of block indices (negative from the end), default every layer;
  - `position`: the token whose predictions are read (-1 = last, predicting the next token).
Each chosen block's output is put through the model's final norm and unembedding (and
Gemma 2's logit soft-capping), exactly like the real output head, so the last layer's row
equals the model's logits. Returns a `LogitLensResult` with `layers`, `logits`
[n_layers, vocab] (float32, CPU), `probs`, `top_ids`, `top_tokens`, `top_probs` (lists per
layer) and a readable table as its repr.
Mounted alone (`Library::from_file("toolkit/logit_lens.py")`), seer installs the
sibling modules it imports beside it.
"""

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import torch

try:
    from .extract_activations import extract_activations
    from .model_layout import get_layout, layer_index
except ImportError:  # mounted as single modules rather than the `toolkit` package
    from extract_activations import extract_activations
    from model_layout import get_layout, layer_index


@dataclass
class LogitLensResult:
    """Per-layer predictions at one position; `str()`/`repr()` show a table."""

    layers: List[int]
    logits: torch.Tensor
    probs: torch.Tensor
    top_ids: List[List[int]]
    top_tokens: List[List[str]]
    top_probs: List[List[float]]

    def __repr__(self) -> str:
        lines = ["layer  top tokens (probability)"]
        for layer, toks, ps in zip(self.layers, self.top_tokens, self.top_probs):
            cells = ", ".join(f"{t!r} {p:.3f}" for t, p in zip(toks, ps))
            lines.append(f"{layer:>5}  {cells}")
        return "\n".join(lines)

    __str__ = __repr__


@torch.no_grad()
def logit_lens(
    model: Any,
    tokenizer: Any,
    prompt: Any,
    layers: Optional[Sequence[int]] = None,
    top_k: int = 5,
    position: int = -1,
) -> LogitLensResult:
    """Decodes each layer's residual stream at `position` with the model's output head."""
    layout = get_layout(model)
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        raise TypeError("logit_lens takes one prompt (a string or a chat), not a list of prompts")
    if layers is None:
        layer_list = list(range(layout.num_layers))
    else:
        layer_list = [layer_index(layout, l) for l in layers]
    acts = extract_activations(model, tokenizer, prompt, layer_list, positions=position)  # [L, d]
    head_param = next(layout.unembed.parameters())
    hidden = acts.to(device=head_param.device, dtype=head_param.dtype)
    logits = layout.to_logits(hidden).float().cpu()  # [L, vocab]
    probs = logits.softmax(-1)
    k = min(top_k, logits.shape[-1])
    top = probs.topk(k, dim=-1)
    top_ids = top.indices.tolist()
    return LogitLensResult(
        layers=layer_list,
        logits=logits,
        probs=probs,
        top_ids=top_ids,
        top_tokens=[[tokenizer.decode([i]) for i in row] for row in top_ids],
        top_probs=top.values.tolist(),
    )

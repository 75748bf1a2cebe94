"""Where the parts of a decoder language model live, whatever its architecture.

`get_layout(model)` returns a `ModelLayout` with:
  - `layers`: the list of decoder blocks (`layers[i]` outputs the residual stream after block i),
  - `final_norm`: the norm applied before the unembedding (None if the model has none),
  - `unembed`: the output projection to vocabulary logits (`lm_head`),
  - `model`: the plain transformers model (PEFT wrappers removed; LoRA layers stay active),
  - `num_layers`, `logit_softcap` (Gemma 2 style final soft-capping, else None).

Known layouts: Llama / Mistral / Qwen / Gemma (`model.model.layers`, `model.model.norm`),
GPT-2 (`model.transformer.h`, `model.transformer.ln_f`), GPT-NeoX (`gpt_neox.layers`),
OPT (`model.decoder.layers`), and multimodal wrappers with a `language_model`. PEFT models
(`PeftModel`, LoRA) are unwrapped first. Other helpers: `layer_index(model, i)` turns a
negative index into a positive one, `layer_output_tensor(output)` gets the hidden states
out of a block's output (a tensor or a tuple), `replace_layer_output(output, hidden)`.
"""

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

# Dotted paths tried in order, relative to the unwrapped model.
_LAYER_PATHS = [
    "model.layers",
    "model.language_model.layers",
    "language_model.model.layers",
    "model.text_model.layers",
    "transformer.h",
    "gpt_neox.layers",
    "model.decoder.layers",
    "transformer.layers",
    "layers",
    "h",
]
_NORM_PATHS = [
    "model.norm",
    "model.language_model.norm",
    "language_model.model.norm",
    "model.text_model.norm",
    "transformer.ln_f",
    "gpt_neox.final_layer_norm",
    "model.decoder.final_layer_norm",
    "transformer.norm",
    "transformer.final_layernorm",
    "norm",
    "ln_f",
]


@dataclass
class ModelLayout:
    """The parts of a decoder model that interpretability code needs."""

    model: nn.Module
    layers: nn.ModuleList
    final_norm: Optional[nn.Module]
    unembed: nn.Module
    logit_softcap: Optional[float] = None

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def to_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Residual-stream vectors [..., d_model] -> vocabulary logits [..., vocab], the way
        the model's own head does it (final norm, unembedding, soft-capping if any)."""
        x = hidden
        if self.final_norm is not None:
            x = self.final_norm(x)
        logits = self.unembed(x)
        if self.logit_softcap:
            logits = torch.tanh(logits / self.logit_softcap) * self.logit_softcap
        return logits


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def unwrap_model(model: nn.Module) -> nn.Module:
    """The transformers model under any PEFT wrapper (the same object if there is none)."""
    seen = set()
    m = model
    while id(m) not in seen:
        seen.add(id(m))
        get_base = getattr(m, "get_base_model", None)
        if callable(get_base):
            inner = get_base()
            if inner is not None and inner is not m:
                m = inner
                continue
        # peft's LoraModel (PeftModel.base_model) keeps the real model as `.model`.
        if type(m).__module__.startswith("peft.") and isinstance(getattr(m, "model", None), nn.Module):
            m = m.model
            continue
        break
    return m


def get_layout(model: nn.Module) -> ModelLayout:
    """Finds the decoder blocks, final norm and unembedding of `model` (PEFT-wrapped or not).

    Raises ValueError naming the model class when the layout is not recognised.
    """
    base = unwrap_model(model)
    layers = None
    for path in _LAYER_PATHS:
        cand = _get_path(base, path)
        if isinstance(cand, nn.ModuleList) and len(cand) > 0:
            layers = cand
            break
    if layers is None:
        raise ValueError(
            f"cannot find the decoder layers of {type(base).__name__}; known layouts: "
            + ", ".join(_LAYER_PATHS)
        )
    norm = None
    for path in _NORM_PATHS:
        cand = _get_path(base, path)
        if isinstance(cand, nn.Module) and not isinstance(cand, nn.ModuleList):
            norm = cand
            break
    unembed = None
    get_out = getattr(base, "get_output_embeddings", None)
    if callable(get_out):
        unembed = get_out()
    if unembed is None:
        for path in ["lm_head", "embed_out"]:
            unembed = _get_path(base, path)
            if unembed is not None:
                break
    if unembed is None:
        raise ValueError(f"cannot find the unembedding (lm_head) of {type(base).__name__}")
    config = getattr(base, "config", None)
    text_config = getattr(config, "text_config", None) or config
    softcap = getattr(text_config, "final_logit_softcapping", None)
    return ModelLayout(
        model=base, layers=layers, final_norm=norm, unembed=unembed, logit_softcap=softcap
    )


def layer_index(model_or_layout: Any, layer: int) -> int:
    """`layer` as a non-negative index (-1 is the last block); IndexError when out of range."""
    layout = model_or_layout if isinstance(model_or_layout, ModelLayout) else get_layout(model_or_layout)
    n = layout.num_layers
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise TypeError(f"a layer index must be an int, not {type(layer).__name__}")
    if not -n <= layer < n:
        raise IndexError(f"layer {layer} is out of range: the model has {n} layers (0..{n - 1}, or -{n}..-1)")
    return layer % n


def layer_output_tensor(output: Any) -> torch.Tensor:
    """The hidden states [batch, seq, d_model] in a decoder block's output."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    hidden = getattr(output, "hidden_states", None)
    if isinstance(hidden, torch.Tensor):
        return hidden
    raise TypeError(f"unexpected decoder block output type {type(output).__name__}")


def replace_layer_output(output: Any, hidden: torch.Tensor) -> Any:
    """`output` with its hidden states replaced by `hidden` (same container type)."""
    if isinstance(output, torch.Tensor):
        return hidden
    if isinstance(output, tuple):
        return (hidden,) + tuple(output[1:])
    if isinstance(output, list):
        return [hidden] + list(output[1:])
    if hasattr(output, "hidden_states"):
        output.hidden_states = hidden
        return output
    raise TypeError(f"unexpected decoder block output type {type(output).__name__}")


def model_device(model: nn.Module) -> torch.device:
    """The device of the input embeddings (where input ids must go)."""
    base = unwrap_model(model)
    get_in = getattr(base, "get_input_embeddings", None)
    emb = get_in() if callable(get_in) else None
    if emb is not None and getattr(emb, "weight", None) is not None:
        return emb.weight.device
    return next(base.parameters()).device

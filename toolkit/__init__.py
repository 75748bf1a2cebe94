"""toolkit: interpretability helpers for Hugging Face decoder models (Llama, Gemma, Qwen,
GPT-2 layouts; PEFT/LoRA-wrapped models too). Everything runs on the loaded `model` and
`tokenizer`; prompts are strings or chats (lists of {"role", "content"} dicts, rendered
with the tokenizer's chat template).

- `extract_activations(model, tokenizer, prompts_or_chats, layers, positions=-1)` ->
  residual-stream activations, float32 [n_prompts, n_layers, n_positions, d_model] (axes of
  int arguments and of a single prompt dropped). Layer i = output of decoder block i.
- `steering_hook(model, layer, vector, start_position=0, scale=1.0)` -> context manager that
  adds `scale * vector` to block `layer`'s output at token positions >= start_position
  (forward passes and generate); hooks removed on exit, even after an error.
- `batch_generate(model, tokenizer, prompts_or_chats, max_new_tokens=64, batch_size=8,
  prefill=None)` -> list of generated strings; chat templates, prefilled assistant turns,
  left-padded batches; greedy unless do_sample=True.
- `logit_lens(model, tokenizer, prompt, layers=None, top_k=5)` -> each layer's residual
  stream decoded by the model's final norm + unembedding; print it for a table.
- `activation_patching(model, tokenizer, clean_prompt, corrupt_prompt, layers, position=-1)`
  -> patch the clean run's block output into the corrupt run, layer by layer; reports the
  target token's logit change and the fraction recovered.
- `contrastive_steering_vector(model, tokenizer, positive_prompts, negative_prompts, layer)`
  -> mean activation difference [d_model], ready for steering_hook.
- `get_layout(model)` -> the model's `layers`, `final_norm`, `unembed` (and `to_logits`).
- `research_methodology()` -> how to run an investigation (hypotheses, controls, baselines,
  writing findings down as you go); read it before starting.
- Seer's names: `extract_activation(model, tokenizer, text, layer_idx, position=-1)` ->
  one activation [d_model]; `create_steering_hook(model, layer_idx, vector, strength=1.0,
  start_pos=0)` -> the steering context manager; `generate_response(model, tokenizer,
  prompt, max_new_tokens=100, temperature=0.7)` -> one completion.
Each function has a docstring: `help(toolkit.extract_activations)`.
"""

import os as _os

from .activation_patching import PatchingResult, activation_patching
from .batch_generate import batch_generate, generate_response
from .contrastive_steering import contrastive_steering_vector
from .extract_activations import extract_activation, extract_activations
from .logit_lens import LogitLensResult, logit_lens
from .model_layout import ModelLayout, get_layout, unwrap_model
from .prompts import format_prompts
from .steering_hook import create_steering_hook, steering_hook


def research_methodology() -> str:
    """The research methodology notes shipped with the toolkit (Markdown text)."""
    path = _os.path.join(_os.path.dirname(__file__), "research_methodology.md")
    with open(path, encoding="utf-8") as f:
        return f.read()


__all__ = [
    "ModelLayout",
    "LogitLensResult",
    "PatchingResult",
    "activation_patching",
    "batch_generate",
    "contrastive_steering_vector",
    "create_steering_hook",
    "extract_activation",
    "extract_activations",
    "format_prompts",
    "generate_response",
    "get_layout",
    "logit_lens",
    "research_methodology",
    "steering_hook",
    "unwrap_model",
]

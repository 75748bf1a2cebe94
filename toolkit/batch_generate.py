"""Generation for many prompts or chats at once, with chat templates and prefill.

    batch_generate(model, tokenizer, [[{"role": "user", "content": "Who are you?"}]],
                   max_new_tokens=40, prefill="Honestly, I am")
    # -> ["Honestly, I am ..."]: the assistant turn, starting with the prefill

`batch_generate(model, tokenizer, prompts_or_chats, max_new_tokens=64, batch_size=8,
prefill=None, do_sample=False, temperature=1.0, top_p=1.0, include_prefill=True,
skip_special_tokens=True, add_generation_prompt=True, **generate_kwargs)`:
  - chats (lists of {"role", "content"} dicts) are rendered with the tokenizer's chat
    template and the assistant turn is opened; plain strings are used as they are;
  - `prefill`: text the assistant's answer starts with (a string for all, or one per
    prompt); the model continues from it;
  - prompts run `batch_size` at a time, LEFT-padded, so each prompt gives the same greedy
    output as when run alone;
  - returns a list of strings (one string if a single prompt or chat was given): the
    generated text, led by the prefill unless `include_prefill=False`.
Greedy by default (`do_sample=False`); extra keyword arguments go to `model.generate`.
Mounted alone (`Library::from_file("toolkit/batch_generate.py")`), seer installs the
sibling modules it imports beside it.
"""

from typing import Any, List, Optional, Sequence, Union

import torch

try:
    from .model_layout import model_device
    from .prompts import encode_batch, format_prompts, pad_id
except ImportError:  # mounted as single modules rather than the `toolkit` package
    from model_layout import model_device
    from prompts import encode_batch, format_prompts, pad_id


@torch.no_grad()
def batch_generate(
    model: Any,
    tokenizer: Any,
    prompts_or_chats: Any,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    prefill: Optional[Union[str, Sequence[str]]] = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    include_prefill: bool = True,
    skip_special_tokens: bool = True,
    add_generation_prompt: bool = True,
    **generate_kwargs: Any,
) -> Union[str, List[str]]:
    """Generated continuations, one per prompt or chat (see the module docstring)."""
    texts, chats, single = format_prompts(
        tokenizer, prompts_or_chats, prefill=prefill, add_generation_prompt=add_generation_prompt
    )
    n = len(texts)
    if prefill is None:
        prefills = [""] * n
    elif isinstance(prefill, str):
        prefills = [prefill] * n
    else:
        prefills = list(prefill)
    device = model_device(model)
    options = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=pad_id(tokenizer))
    if do_sample:
        options.update(temperature=temperature, top_p=top_p)
    options.update(generate_kwargs)
    results: List[str] = []
    for start in range(0, n, max(1, batch_size)):
        batch = encode_batch(tokenizer, texts[start:start + batch_size], chats[start:start + batch_size], device)
        out = model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **options
        )
        width = batch["input_ids"].shape[1]
        for row, pre in zip(out, prefills[start:start + batch_size]):
            text = tokenizer.decode(row[width:], skip_special_tokens=skip_special_tokens)
            results.append(pre + text if include_prefill else text)
    return results[0] if single else results


def generate_response(model: Any, tokenizer: Any, prompt: Any, max_new_tokens: int = 100, temperature: float = 0.7) -> str:
    """Seer's name and signature: one completion of a prompt or chat, sampled at
    `temperature` (greedy at 0). `batch_generate` for one prompt."""
    sample = temperature > 0
    return batch_generate(
        model, tokenizer, prompt, max_new_tokens=max_new_tokens, do_sample=sample,
        temperature=temperature if sample else 1.0,
    )

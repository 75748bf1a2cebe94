"""Turning prompts or chats into token batches, the way every toolkit function reads input.

Input forms accepted wherever a function takes `prompts_or_chats`:
  - a string: one plain prompt;
  - a chat: a list of `{"role": ..., "content": ...}` messages (rendered with the tokenizer's
    chat template, with the assistant turn opened by `add_generation_prompt=True`);
  - a list of strings and/or chats: a batch.

`format_prompts(tokenizer, prompts_or_chats, prefill=None)` returns `(texts, is_chat, single)`:
the rendered texts, which ones came from chats, and whether one item (not a list) was given.
`prefill` (a string, or one per prompt) is appended after the rendered text, so the
assistant's answer starts with it.
`encode_batch(tokenizer, texts, is_chat, device)` tokenizes with LEFT padding and returns
`input_ids`, `attention_mask` and `position_ids` [batch, seq] (pads get position 0), and
`lengths` (real tokens per row). Plain prompts get the tokenizer's special tokens (BOS);
chat texts do not, since the template already wrote them.
"""

from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

Message = dict
Chat = List[Message]
PromptOrChat = Union[str, Chat]


def is_chat(x: Any) -> bool:
    """True for a list of role/content message dicts."""
    return (
        isinstance(x, (list, tuple))
        and len(x) > 0
        and all(isinstance(m, dict) and "role" in m for m in x)
    )


def as_list(prompts_or_chats: Any) -> Tuple[List[PromptOrChat], bool]:
    """`(items, single)`: a lone prompt or chat becomes a list of one."""
    if isinstance(prompts_or_chats, str) or is_chat(prompts_or_chats):
        return [prompts_or_chats], True
    if isinstance(prompts_or_chats, (list, tuple)):
        items = list(prompts_or_chats)
        if not items:
            raise ValueError("no prompts given")
        for i, item in enumerate(items):
            if not (isinstance(item, str) or is_chat(item)):
                raise TypeError(
                    f"prompt {i} is a {type(item).__name__}; give a string or a chat "
                    "(a list of {'role', 'content'} dicts)"
                )
        return items, False
    raise TypeError(
        f"expected a string, a chat or a list of them, not {type(prompts_or_chats).__name__}"
    )


def render_chat(tokenizer: Any, chat: Chat, add_generation_prompt: bool = True) -> str:
    """The chat as text through the tokenizer's chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "this tokenizer has no chat template; pass plain strings, or set "
            "tokenizer.chat_template"
        )
    return tokenizer.apply_chat_template(
        list(chat), tokenize=False, add_generation_prompt=add_generation_prompt
    )


def format_prompts(
    tokenizer: Any,
    prompts_or_chats: Any,
    prefill: Optional[Union[str, Sequence[str]]] = None,
    add_generation_prompt: bool = True,
) -> Tuple[List[str], List[bool], bool]:
    """Rendered texts, which came from chats, and whether a single item was given."""
    items, single = as_list(prompts_or_chats)
    if prefill is None:
        prefills = [""] * len(items)
    elif isinstance(prefill, str):
        prefills = [prefill] * len(items)
    else:
        prefills = list(prefill)
        if len(prefills) != len(items):
            raise ValueError(f"{len(prefills)} prefills for {len(items)} prompts")
    texts, chats = [], []
    for item, pre in zip(items, prefills):
        if isinstance(item, str):
            texts.append(item + pre)
            chats.append(False)
        else:
            texts.append(render_chat(tokenizer, item, add_generation_prompt) + pre)
            chats.append(True)
    return texts, chats, single


def pad_id(tokenizer: Any) -> int:
    """The id used for padding: the pad token, else EOS, else 0."""
    for attr in ("pad_token_id", "eos_token_id"):
        v = getattr(tokenizer, attr, None)
        if isinstance(v, (list, tuple)):
            v = v[0] if v else None
        if v is not None:
            return int(v)
    return 0


def encode_batch(
    tokenizer: Any, texts: Sequence[str], is_chat: Sequence[bool], device: Any = "cpu"
) -> dict:
    """Left-padded `input_ids`, `attention_mask`, `position_ids` and `lengths`."""
    rows = []
    for text, chat in zip(texts, is_chat):
        ids = tokenizer(text, add_special_tokens=not chat)["input_ids"]
        if len(ids) == 0:
            raise ValueError(f"the prompt {text!r} has no tokens")
        rows.append(list(ids))
    width = max(len(r) for r in rows)
    pid = pad_id(tokenizer)
    input_ids = torch.full((len(rows), width), pid, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "position_ids": position_ids.to(device),
        "lengths": [len(r) for r in rows],
    }


def resolve_position(position: int, length: int, width: int) -> int:
    """Column in a left-padded row of `width` for token `position` of a prompt of `length`
    tokens (negative positions count from the end)."""
    if not isinstance(position, int) or isinstance(position, bool):
        raise TypeError(f"a position must be an int, not {type(position).__name__}")
    if not -length <= position < length:
        raise IndexError(
            f"position {position} is out of range for a prompt of {length} tokens"
        )
    return width - length + (position % length)

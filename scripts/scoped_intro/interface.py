"""Functions the agent may call on a model it cannot touch directly.

The model lives in the scoped sandbox; the agent only gets these functions.
"""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

NAME = list_configured_models()[0]  # noqa: F821 (injected by seer)
PATH = get_model_path(NAME)  # noqa: F821
tokenizer = AutoTokenizer.from_pretrained(PATH)
model = AutoModelForCausalLM.from_pretrained(PATH)
model.eval()


@expose  # noqa: F821
def generate(prompt: str, max_new_tokens: int = 40) -> str:
    """Greedy continuation of a prompt.

    Args:
        prompt: The text to continue.
        max_new_tokens: How many tokens to generate at most.
    """
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


@expose  # noqa: F821
def next_token_probabilities(prompt: str, top_k: int = 5) -> dict[str, float]:
    """The most likely next tokens after a prompt, with their probabilities.

    Args:
        prompt: The text before the next token.
        top_k: How many tokens to return.
    """
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        probs = model(ids).logits[0, -1].softmax(-1)
    top = probs.topk(top_k)
    return {tokenizer.decode([int(i)]): float(p) for p, i in zip(top.values, top.indices)}

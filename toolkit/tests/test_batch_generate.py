import torch

from conftest import count_hooks
from toolkit import batch_generate

CHATS = [
    [{"role": "user", "content": "hello"}],
    [{"role": "system", "content": "you are a cat"}, {"role": "user", "content": "what is the city of paris ?"}],
    [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}],
]


def test_batched_equals_one_by_one(arch_model, tokenizer):
    _, model = arch_model
    batched = batch_generate(model, tokenizer, CHATS, max_new_tokens=6, batch_size=3)
    alone = [batch_generate(model, tokenizer, chat, max_new_tokens=6) for chat in CHATS]
    assert batched == alone
    assert all(isinstance(t, str) for t in batched)
    # And equal to a plain model.generate on the rendered chat, no toolkit involved.
    for chat, text in zip(CHATS, batched):
        rendered = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(rendered, return_tensors="pt", add_special_tokens=False)
        out = model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=1)
        assert text == tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_plain_prompts_and_odd_batch_sizes(llama, tokenizer):
    prompts = ["the cat", "hello world , i think", "a", "the quick brown fox"]
    two = batch_generate(llama, tokenizer, prompts, max_new_tokens=5, batch_size=3)
    one = batch_generate(llama, tokenizer, prompts, max_new_tokens=5, batch_size=1)
    assert two == one and len(two) == 4


def test_prefill_starts_the_assistant_turn(llama, tokenizer):
    prefill = "honestly i think"
    out = batch_generate(llama, tokenizer, CHATS, max_new_tokens=5, prefill=prefill)
    assert all(t.startswith(prefill) for t in out)
    rest = batch_generate(llama, tokenizer, CHATS, max_new_tokens=5, prefill=prefill, include_prefill=False)
    for chat, full, tail in zip(CHATS, out, rest):
        assert full == prefill + tail
        rendered = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(rendered + prefill, return_tensors="pt", add_special_tokens=False)
        gen = llama.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=1)
        assert tail == tokenizer.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    # One prefill per prompt.
    per = batch_generate(llama, tokenizer, CHATS[:2], max_new_tokens=3, prefill=["yes", "no"])
    assert per[0].startswith("yes") and per[1].startswith("no")
    assert count_hooks(llama) == 0

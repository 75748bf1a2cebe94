import pytest
import torch

from conftest import count_hooks
from toolkit import extract_activations, get_layout

PROMPTS = ["the cat sat on the mat", "hello world", "the quick brown fox jumps over the lazy dog"]


def test_shapes(arch_model, tokenizer):
    _, model = arch_model
    d = get_layout(model).unembed.in_features
    assert extract_activations(model, tokenizer, PROMPTS, [0, -1], [-1, 0, 1]).shape == (3, 2, 3, d)
    assert extract_activations(model, tokenizer, PROMPTS, [0, 2]).shape == (3, 2, d)
    assert extract_activations(model, tokenizer, PROMPTS, -1, [-2, -1]).shape == (3, 2, d)
    assert extract_activations(model, tokenizer, PROMPTS, 1).shape == (3, d)
    assert extract_activations(model, tokenizer, "hello world", 1).shape == (d,)
    assert extract_activations(model, tokenizer, "hello world", [0, 1], [0, 1]).shape == (2, 2, d)
    acts = extract_activations(model, tokenizer, PROMPTS, -1)
    assert acts.dtype == torch.float32 and acts.device.type == "cpu"
    assert count_hooks(model) == 0


def test_matches_layer_outputs_and_padding_is_invisible(arch_model, tokenizer):
    _, model = arch_model
    layout = get_layout(model)
    batched = extract_activations(model, tokenizer, PROMPTS, [0, 1, -1], [0, -1], batch_size=3)
    for i, prompt in enumerate(PROMPTS):
        alone = extract_activations(model, tokenizer, prompt, [0, 1, -1], [0, -1])
        torch.testing.assert_close(batched[i], alone, rtol=1e-4, atol=1e-5)
    # The same numbers as the model's own hidden states (output of block i = hidden_states[i+1];
    # the last entry of hidden_states has the final norm applied, so compare an inner layer).
    ids = tokenizer(PROMPTS[0], return_tensors="pt")
    with torch.no_grad():
        hs = model(**ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(batched[0, 1, 1], hs[2][0, -1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched[0, 0, 0], hs[1][0, 0], rtol=1e-4, atol=1e-5)
    assert layout.num_layers == 3


def test_chats_use_the_template(llama, tokenizer):
    chat = [{"role": "user", "content": "hello world"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text.endswith("<assistant>")
    from_chat = extract_activations(llama, tokenizer, [chat], [0, -1], -1)
    # The rendered text has no BOS added by the tokenizer's post-processing either way here.
    from_text = extract_activations(llama, tokenizer, [text], [0, -1], -1)
    torch.testing.assert_close(from_chat, from_text)
    assert from_chat.shape == (1, 2, 32)


def test_bad_indices(llama, tokenizer):
    with pytest.raises(IndexError):
        extract_activations(llama, tokenizer, "hello world", 3)
    with pytest.raises(IndexError):
        extract_activations(llama, tokenizer, "hello world", 0, positions=5)
    assert count_hooks(llama) == 0

"""Seer's toolkit names and signatures, on top of seer's: `extract_activation`,
`create_steering_hook` (a context manager), `generate_response`."""

import torch

from toolkit import (
    batch_generate,
    create_steering_hook,
    extract_activation,
    extract_activations,
    generate_response,
    get_layout,
    steering_hook,
)


def test_extract_activation_is_one_vector_from_hidden_states(llama, tokenizer):
    text = "the quick brown fox"
    act = extract_activation(llama, tokenizer, text, layer_idx=1)
    assert act.shape == (get_layout(llama).unembed.in_features,)
    assert act.device.type == "cpu"
    assert torch.equal(act, extract_activations(llama, tokenizer, text, 1, -1))
    # Seer's definition: hidden_states[layer_idx + 1] at the position.
    ids = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        hs = llama(**ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(act, hs[2][0, -1].float())
    torch.testing.assert_close(extract_activation(llama, tokenizer, text, -2, position=0), hs[-2][0, 0].float())


def test_create_steering_hook_is_the_steering_context_manager(llama, tokenizer):
    d = get_layout(llama).unembed.in_features
    v = torch.randn(d, generator=torch.Generator().manual_seed(3))
    text = "the lazy dog"
    with steering_hook(llama, 1, v, start_position=1, scale=2.5):
        want = extract_activations(llama, tokenizer, text, -1, [0, 1, 2])
    with create_steering_hook(llama, layer_idx=1, vector=v, strength=2.5, start_pos=1):
        got = extract_activations(llama, tokenizer, text, -1, [0, 1, 2])
    assert torch.equal(got, want)
    plain = extract_activations(llama, tokenizer, text, -1, [0, 1, 2])
    assert not torch.equal(got, plain)


def test_generate_response_is_one_completion(llama, tokenizer):
    greedy = generate_response(llama, tokenizer, "the quick", max_new_tokens=5, temperature=0)
    assert greedy == batch_generate(llama, tokenizer, "the quick", max_new_tokens=5)
    torch.manual_seed(0)
    sampled = generate_response(llama, tokenizer, "the quick", max_new_tokens=5)
    assert isinstance(sampled, str)

import pytest
import torch

from conftest import count_hooks
from toolkit import contrastive_steering_vector, extract_activations, get_layout, steering_hook


def logits_of(model, tokenizer, text):
    ids = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


def test_steering_changes_outputs_and_removal_restores_them(arch_model, tokenizer):
    _, model = arch_model
    d = get_layout(model).unembed.in_features
    text = "the quick brown fox jumps over the lazy dog"
    before = logits_of(model, tokenizer, text)
    vector = torch.randn(d, generator=torch.Generator().manual_seed(1))
    with steering_hook(model, layer=1, vector=vector, scale=4.0):
        assert count_hooks(model) == 2
        steered = logits_of(model, tokenizer, text)
    assert not torch.allclose(before, steered)
    assert count_hooks(model) == 0
    after = logits_of(model, tokenizer, text)
    assert torch.equal(before, after)


def test_start_position_leaves_earlier_tokens_alone(arch_model, tokenizer):
    _, model = arch_model
    d = get_layout(model).unembed.in_features
    text = "the quick brown fox jumps over the lazy dog"
    n = len(tokenizer(text)["input_ids"])
    vector = torch.ones(d)
    before = extract_activations(model, tokenizer, text, -1, list(range(n)))
    with steering_hook(model, layer=0, vector=vector, start_position=4, scale=3.0):
        steered = extract_activations(model, tokenizer, text, 0, list(range(n)))
        late = extract_activations(model, tokenizer, text, -1, list(range(n)))
    base0 = extract_activations(model, tokenizer, text, 0, list(range(n)))
    # Block 0's output moves by exactly scale * vector from position 4 on, not before.
    torch.testing.assert_close(steered[:4], base0[:4])
    torch.testing.assert_close(steered[4:], base0[4:] + 3.0, rtol=1e-5, atol=1e-5)
    # Causality: the last layer is untouched before position 4 and changed from there.
    torch.testing.assert_close(late[:4], before[:4], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(late[4:], before[4:])


def test_start_position_counts_real_tokens_in_padded_batches_and_generation(llama, tokenizer):
    vector = torch.randn(32, generator=torch.Generator().manual_seed(2))
    short, long = "hello world", "the quick brown fox jumps over the lazy dog"
    with steering_hook(llama, 0, vector, start_position=1, scale=2.0):
        batched = extract_activations(llama, tokenizer, [short, long], 0, [0, 1])
        alone = extract_activations(llama, tokenizer, short, 0, [0, 1])
    torch.testing.assert_close(batched[0], alone, rtol=1e-5, atol=1e-5)
    plain = extract_activations(llama, tokenizer, short, 0, [0, 1])
    torch.testing.assert_close(alone[0], plain[0])  # position 0 not steered
    assert not torch.allclose(alone[1], plain[1])

    # Generation with a KV cache: steering only from position len(prompt) on changes only
    # the generated tokens, and matches a full forward pass of the same sequence.
    ids = tokenizer(long, return_tensors="pt")
    n = ids["input_ids"].shape[1]
    with steering_hook(llama, 1, vector, start_position=n, scale=6.0):
        gen = llama.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=1)
        with torch.no_grad():
            full = llama(gen[:, :-1]).logits[0, n - 1:].argmax(-1)
    assert torch.equal(full, gen[0, n:])
    assert count_hooks(llama) == 0


def test_hooks_removed_after_an_exception(arch_model, tokenizer):
    _, model = arch_model
    d = get_layout(model).unembed.in_features
    with pytest.raises(RuntimeError, match="boom"):
        with steering_hook(model, -1, torch.ones(d)):
            logits_of(model, tokenizer, "hello world")
            raise RuntimeError("boom")
    assert count_hooks(model) == 0
    # A wrong-sized vector fails inside the forward pass; hooks still go.
    with pytest.raises(ValueError, match="dims"):
        with steering_hook(model, 0, torch.ones(d + 1)):
            logits_of(model, tokenizer, "hello world")
    assert count_hooks(model) == 0


def test_nested_hooks_add_up(llama, tokenizer):
    v = torch.randn(32, generator=torch.Generator().manual_seed(3))
    with steering_hook(llama, 0, v):
        with steering_hook(llama, 0, v):
            twice = extract_activations(llama, tokenizer, "hello world", 0)
    with steering_hook(llama, 0, v, scale=2.0):
        doubled = extract_activations(llama, tokenizer, "hello world", 0)
    torch.testing.assert_close(twice, doubled, rtol=1e-5, atol=1e-5)
    assert count_hooks(llama) == 0


def test_contrastive_vector_is_the_mean_difference(arch_model, tokenizer):
    _, model = arch_model
    pos = ["i love this", "what a joy", "yes i love that"]
    neg = ["i hate this", "what a pain"]
    v = contrastive_steering_vector(model, tokenizer, pos, neg, layer=1, batch_size=2)
    a = torch.stack([extract_activations(model, tokenizer, p, 1) for p in pos])
    b = torch.stack([extract_activations(model, tokenizer, p, 1) for p in neg])
    torch.testing.assert_close(v, a.mean(0) - b.mean(0), rtol=1e-4, atol=1e-5)
    unit = contrastive_steering_vector(model, tokenizer, pos, neg, layer=1, normalize=True)
    torch.testing.assert_close(unit.norm(), torch.tensor(1.0))
    assert count_hooks(model) == 0

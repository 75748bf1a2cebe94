import math

import torch

from conftest import count_hooks
from toolkit import activation_patching, logit_lens

CLEAN = "the cat sat on the mat"
CORRUPT = "a dog ran on the rug in rome"


def test_logit_lens_last_layer_is_the_model_output(arch_model, tokenizer):
    _, model = arch_model
    lens = logit_lens(model, tokenizer, CLEAN, top_k=3)
    assert lens.layers == [0, 1, 2]
    assert lens.logits.shape == (3, model.config.vocab_size)
    assert len(lens.top_tokens) == 3 and all(len(t) == 3 for t in lens.top_tokens)
    ids = tokenizer(CLEAN, return_tensors="pt")
    with torch.no_grad():
        real = model(**ids).logits[0, -1].float()
    torch.testing.assert_close(lens.logits[-1], real, rtol=1e-4, atol=1e-4)
    assert lens.top_ids[-1][0] == int(real.argmax())
    assert "layer" in repr(lens)
    some = logit_lens(model, tokenizer, CLEAN, layers=[-1, 0], top_k=2)
    assert some.layers == [2, 0]
    torch.testing.assert_close(some.logits[0], lens.logits[2])
    assert count_hooks(model) == 0


def test_patching_last_layer_last_position_gives_clean_logits(arch_model, tokenizer):
    _, model = arch_model
    r = activation_patching(model, tokenizer, CLEAN, CORRUPT, layers=[0, 1, -1])
    assert r.layers == [0, 1, 2]
    assert r.patched_logits.shape == (3, model.config.vocab_size)
    torch.testing.assert_close(r.patched_logits[-1], r.clean_logits, rtol=1e-4, atol=1e-4)
    assert math.isclose(r.recovered[-1], 1.0, rel_tol=1e-3, abs_tol=1e-3)
    assert not torch.allclose(r.clean_logits, r.corrupt_logits)
    assert r.target_id == int(r.clean_logits.argmax())
    assert "recovered" in repr(r)
    # The reported clean and corrupt logits are the model's own.
    for text, logits in [(CLEAN, r.clean_logits), (CORRUPT, r.corrupt_logits)]:
        with torch.no_grad():
            real = model(**tokenizer(text, return_tensors="pt")).logits[0, -1]
        torch.testing.assert_close(logits, real, rtol=1e-4, atol=1e-4)
    assert count_hooks(model) == 0


def test_patching_an_earlier_position_of_the_last_layer_changes_nothing(llama, tokenizer):
    # The last block's output at position 0 feeds no later block: the logits at the last
    # token cannot change.
    r = activation_patching(llama, tokenizer, CLEAN, CORRUPT, layers=[-1], position=0, target_token="mat")
    torch.testing.assert_close(r.patched_logits[0], r.corrupt_logits)
    assert r.target_token == "mat"
    # An early layer at position 0 does change the result (attention carries it forward).
    r0 = activation_patching(llama, tokenizer, CLEAN, CORRUPT, layers=[0], position=0)
    assert not torch.allclose(r0.patched_logits[0], r0.corrupt_logits)

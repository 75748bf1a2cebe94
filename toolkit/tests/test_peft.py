"""Every helper on a LoRA-wrapped model: layers are found through the PEFT wrapper, and the
adapter stays active in what they measure."""

import pytest
import torch
from peft import LoraConfig, get_peft_model

from conftest import build_model, count_hooks
from toolkit import (
    activation_patching, batch_generate, contrastive_steering_vector, extract_activations,
    get_layout, logit_lens, steering_hook,
)


@pytest.fixture(scope="module")
def peft_model():
    base = build_model("llama", seed=5)
    cfg = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(6)
    model = get_peft_model(base, cfg)
    model.eval()
    return model


def test_layout_through_peft(peft_model):
    layout = get_layout(peft_model)
    assert type(layout.model).__name__ == "LlamaForCausalLM"
    assert layout.num_layers == 3


def test_helpers_on_a_lora_model(peft_model, tokenizer):
    acts = extract_activations(peft_model, tokenizer, ["hello world", "the cat"], [0, -1])
    assert acts.shape == (2, 2, 32)
    with peft_model.disable_adapter():
        plain = extract_activations(peft_model, tokenizer, ["hello world", "the cat"], [0, -1])
    assert not torch.allclose(acts, plain), "the adapter must be active in the measurement"

    text = "the quick brown fox"
    ids = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        before = peft_model(**ids).logits
    with steering_hook(peft_model, 1, torch.ones(32), scale=3.0):
        with torch.no_grad():
            steered = peft_model(**ids).logits
    with torch.no_grad():
        after = peft_model(**ids).logits
    assert not torch.allclose(before, steered) and torch.equal(before, after)

    lens = logit_lens(peft_model, tokenizer, text)
    torch.testing.assert_close(lens.logits[-1], before[0, -1], rtol=1e-4, atol=1e-4)
    r = activation_patching(peft_model, tokenizer, text, "a dog ran", layers=[-1])
    torch.testing.assert_close(r.patched_logits[0], r.clean_logits, rtol=1e-4, atol=1e-4)
    v = contrastive_steering_vector(peft_model, tokenizer, ["i love this"], ["i hate this"], 0)
    assert v.shape == (32,)
    chats = [[{"role": "user", "content": "hello"}], [{"role": "user", "content": "the cat sat"}]]
    assert batch_generate(peft_model, tokenizer, chats, max_new_tokens=4) == [
        batch_generate(peft_model, tokenizer, c, max_new_tokens=4) for c in chats
    ]
    assert count_hooks(peft_model) == 0

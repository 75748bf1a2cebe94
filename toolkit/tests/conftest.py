"""Tiny random decoder models (Llama, GPT-2, Qwen2, Gemma) and a word-level tokenizer with a
chat template, all built in code: no download, no files."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    GemmaConfig,
    GPT2Config,
    LlamaConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

SPECIAL = ["<unk>", "<pad>", "<s>", "</s>", "<user>", "<assistant>", "<system>"]
WORDS = (
    "the a an cat dog fox sat ran on mat rug quick brown lazy jumps over is in city of "
    "paris rome tower love hate this that what joy pain i you we are hello world yes no "
    "sure honestly think am , . ? !"
).split()
VOCAB = len(SPECIAL) + len(WORDS)

CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def make_tokenizer():
    vocab = {tok: i for i, tok in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<user>", "<assistant>", "<system>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


COMMON = dict(vocab_size=VOCAB, bos_token_id=2, eos_token_id=3, pad_token_id=1)


def make_config(arch):
    if arch == "llama":
        return LlamaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, **COMMON,
        )
    if arch == "gpt2":
        return GPT2Config(n_embd=32, n_layer=3, n_head=4, n_positions=128, **COMMON)
    if arch == "qwen2":
        return Qwen2Config(
            hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, **COMMON,
        )
    if arch == "gemma":
        return GemmaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=1, head_dim=8, max_position_embeddings=128, **COMMON,
        )
    raise ValueError(arch)


ARCHS = ["llama", "gpt2", "qwen2", "gemma"]


def build_model(arch, seed=0):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(make_config(arch))
    model.eval()
    return model


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="session", params=ARCHS)
def arch_model(request):
    return request.param, build_model(request.param)


@pytest.fixture(scope="session")
def llama():
    return build_model("llama")


def count_hooks(model):
    """Forward hooks and pre-hooks installed by the toolkit on any submodule (transformers
    installs hooks of its own, which are not counted)."""
    n = 0
    for m in model.modules():
        for hook in list(m._forward_hooks.values()) + list(m._forward_pre_hooks.values()):
            if getattr(hook, "__module__", "").startswith("toolkit"):
                n += 1
    return n

"""A small client for the target model's API (Anthropic Messages format).

`ask(prompt, system=None, max_tokens=300)` returns the model's text answer.
`ask_many(prompts, system=None)` returns a list of answers.
The model is `TARGET_MODEL`; the key and base URL come from the environment.
"""

import json
import os
import urllib.request


def ask(prompt: str, system: str = None, max_tokens: int = 300) -> str:
    """Sends one user message; returns the text of the answer."""
    body = {
        "model": os.environ.get("TARGET_MODEL", "claude-haiku-4-5"),
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }
    if system:
        body["system"] = system
    base = os.environ.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com").rstrip("/")
    req = urllib.request.Request(
        base + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={
            "content-type": "application/json",
            "x-api-key": os.environ.get("ANTHROPIC_API_KEY", ""),
            "anthropic-version": "2023-06-01",
        },
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        data = json.loads(resp.read())
    return "".join(b.get("text", "") for b in data.get("content", []))


def ask_many(prompts, system: str = None):
    """`ask` for each prompt, in order."""
    return [ask(p, system=system) for p in prompts]

"""A toy two-layer MLP over 16 input features with 4 output classes.

`load_model()` returns the model; `model.hidden(x)` gives the 32 hidden activations (ReLU)
for a batch `x` of shape (n, 16), `model.forward(x)` the 4 output logits. The weights are
fixed by a seed, so every run sees the same model.
"""

import numpy as np


class ToyModel:
    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.W1 = rng.normal(0.0, 0.3, (16, 32))
        self.b1 = np.zeros(32)
        self.W2 = rng.normal(0.0, 0.3, (32, 4))
        # The planted circuit: unit 13 fires only when features 2 and 7 are both high,
        # and it pushes class 2.
        self.W1[:, 13] = 0.0
        self.W1[2, 13] = 2.0
        self.W1[7, 13] = 2.0
        self.b1[13] = -2.5
        self.W2[13] = [0.0, 0.0, 3.0, 0.0]

    def hidden(self, x):
        return np.maximum(0.0, np.asarray(x) @ self.W1 + self.b1)

    def forward(self, x):
        return self.hidden(x) @ self.W2


def load_model(seed: int = 0) -> ToyModel:
    """The toy model (same weights for the same seed)."""
    return ToyModel(seed)

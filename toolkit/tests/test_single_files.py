"""Each module also works mounted on its own (`Library::from_file("toolkit/x.py")`), next to
the modules its docstring says it needs, without the `toolkit` package."""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLKIT = os.path.dirname(HERE)

NEEDS = {
    "extract_activations": ["model_layout", "prompts"],
    "steering_hook": ["model_layout"],
    "batch_generate": ["model_layout", "prompts"],
    "logit_lens": ["model_layout", "prompts", "extract_activations"],
    "activation_patching": ["model_layout", "prompts"],
    "contrastive_steering": ["model_layout", "prompts", "extract_activations"],
}


# One interpreter for all of them (importing torch is the slow part).
CHECK = """
import importlib, sys
for module, folder in CHECKS:
    sys.path.insert(0, folder)
    mod = importlib.import_module(module)
    assert "toolkit" not in sys.modules, module
    assert mod.__doc__.strip(), module
    for name in [module] + NEEDS[module]:
        del sys.modules[name]
    sys.path.remove(folder)
print("ok", len(CHECKS))
"""


def test_modules_import_alone(tmp_path):
    checks = []
    for module, needs in sorted(NEEDS.items()):
        folder = tmp_path / module
        folder.mkdir()
        for name in [module] + needs:
            shutil.copy(os.path.join(TOOLKIT, name + ".py"), folder / (name + ".py"))
        checks.append((module, str(folder)))
    code = f"CHECKS = {checks!r}\nNEEDS = {NEEDS!r}\n" + CHECK
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok {len(NEEDS)}"


def test_every_module_is_documented():
    for name in os.listdir(TOOLKIT):
        if name.endswith(".py"):
            with open(os.path.join(TOOLKIT, name), encoding="utf-8") as f:
                assert f.read().startswith('"""'), f"{name} has no module docstring"

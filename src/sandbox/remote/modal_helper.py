"""seer's bridge to a Modal sandbox (backend "modal"), run by seer in a private venv
holding the official `modal` SDK.

stdin: one JSON line (the spec: image, gpu, timeout, secrets, volume, launcher), then the
byte stream to the seer agent. stdout: the agent's byte stream. stderr: messages.

Default: creates a Modal sandbox from the spec, runs the launcher in it with `sh -c`, and
relays bytes both ways until one side ends; when stdin closes, the sandbox is terminated.

--describe: builds the real SDK objects from the spec, contacts nothing, and prints a JSON
description of what would be created (secret names, never values).

--test-local-sh HOME: a TEST transport: runs the launcher with a local `sh` (HOME set to
HOME) instead of in a Modal sandbox, through the same relay. seer's test suite uses it;
a script config cannot select it.
"""

import json
import os
import subprocess
import sys
import threading

CHUNK = 256 * 1024


def build(spec):
    """The arguments of `modal.Sandbox.create`, as real SDK objects."""
    import modal

    image = modal.Image.debian_slim(python_version=spec["python_version"])
    if spec["system_packages"]:
        image = image.apt_install(*spec["system_packages"])
    if spec["python_packages"]:
        image = image.pip_install(*spec["python_packages"])
    secrets = [modal.Secret.from_dict(dict(spec["secrets"]))] if spec["secrets"] else []
    volumes = {
        spec["hf_cache_path"]: modal.Volume.from_name(
            spec["hf_volume"], create_if_missing=True
        )
    }
    return {
        "image": image,
        "gpu": spec["gpu"],
        "timeout": spec["timeout"],
        "secrets": secrets,
        "volumes": volumes,
        "env": {"HF_HOME": spec["hf_cache_path"]},
    }


def describe(spec):
    import modal

    args = build(spec)
    assert isinstance(args["image"], modal.Image)
    assert all(isinstance(s, modal.Secret) for s in args["secrets"])
    assert all(isinstance(v, modal.Volume) for v in args["volumes"].values())
    return {
        "sdk": modal.__version__,
        "app": spec["app"],
        "image": {
            "base": "debian_slim",
            "python_version": spec["python_version"],
            "apt_packages": spec["system_packages"],
            "pip_packages": spec["python_packages"],
        },
        "gpu": args["gpu"],
        "timeout": args["timeout"],
        "secrets": sorted(spec["secrets"]),
        "volumes": {path: spec["hf_volume"] for path in args["volumes"]},
        "env": args["env"],
        "command": ["sh", "-c", "<seer launcher>"],
    }


class ModalProcess:
    """The launcher in a new Modal sandbox: the one path not tested from seer's CI."""

    def __init__(self, spec):
        import modal

        app = modal.App.lookup(spec["app"], create_if_missing=True)
        self.sandbox = modal.Sandbox.create(app=app, **build(spec))
        proc = self.sandbox.exec("sh", "-c", spec["launcher"], text=False)
        self.stdin = proc.stdin
        self.chunks = iter(proc.stdout)
        self.errors = iter(proc.stderr)

    def end(self):
        self.sandbox.terminate()


class TestLocalProcess:
    """TEST transport: the launcher in a local `sh`, with the stream calls of a Modal
    process (`write`, `drain`, `write_eof`; `stdout` chunks)."""

    def __init__(self, spec, home):
        env = dict(os.environ, HOME=home)
        self.proc = subprocess.Popen(
            ["sh", "-c", spec["launcher"]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.stdin = self
        self.chunks = iter(lambda: self.proc.stdout.read1(CHUNK), b"")
        self.errors = iter(lambda: self.proc.stderr.read1(CHUNK), b"")

    def write(self, data):
        self.proc.stdin.write(data)

    def drain(self):
        self.proc.stdin.flush()

    def write_eof(self):
        self.proc.stdin.close()

    def end(self):
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def relay(proc, inp, out):
    """Bytes from `inp` to the process and from the process to `out` (its stderr to
    ours); the process is ended when `inp` closes or its output ends."""

    def pump_errors():
        for chunk in proc.errors:
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()

    def pump_in():
        try:
            while True:
                data = inp.read1(CHUNK)
                if not data:
                    break
                proc.stdin.write(data)
                proc.stdin.drain()
            proc.stdin.write_eof()
            proc.stdin.drain()
        except Exception as e:  # the process went away first
            print(f"seer modal helper: writing to the sandbox: {e}", file=sys.stderr)
        finally:
            proc.end()

    threading.Thread(target=pump_errors, daemon=True).start()
    threading.Thread(target=pump_in, daemon=True).start()
    for chunk in proc.chunks:
        out.write(chunk)
        out.flush()
    proc.end()


def main(argv):
    inp = sys.stdin.buffer
    spec = json.loads(inp.readline())
    if argv[:1] == ["--describe"]:
        print(json.dumps(describe(spec), indent=2, sort_keys=True))
        return 0
    if argv[:1] == ["--test-local-sh"] and len(argv) == 2:
        proc = TestLocalProcess(spec, argv[1])
    elif not argv:
        proc = ModalProcess(spec)
    else:
        print(f"seer modal helper: unknown arguments {argv}", file=sys.stderr)
        return 2
    relay(proc, inp, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:
        print(f"modal: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)

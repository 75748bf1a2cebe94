#!/usr/bin/env bash
# Installs what the test suite needs on a machine of this kind (Debian, root, Rust, python3,
# git, node/npm), each only when it is missing or out of date; then `cargo test` can run.
# The README's test line is `tests/setup.sh && cargo test`; `.ci/run` runs exactly that.
#
# What it installs (src/testenv.rs is where the tests look for it):
# - Debian packages: git, tmux (the REPL/chat tests drive seer in a pseudo-terminal), procps,
#   bubblewrap (sandbox isolation), chromium (the live view's browser tests),
#   openssh-client and openssh-server (the ssh backend's tests start their own sshd on
#   loopback), slurm-wlm and munge (the slurm backend's tests start their own single-node
#   cluster; the packages' services are not used);
# - uv, pinned, into the tests' shared seer cache, in the layout of seer's own bootstrap
#   (<target>/tmp/seer-cache/uv/bin/uv);
# - a venv with tests/requirements.txt (nbformat, the official mcp/anthropic/openai SDKs,
#   torch, transformers, peft, pytest; fully pinned) in <target>/test-env/python;
# - tests/npm (the claude CLI, an MCP server) with `npm ci` in <target>/test-env/npm;
# - tests/browser (playwright-core, which drives Debian's chromium and downloads no browser)
#   with `npm ci` in <target>/test-env/browser.
# Downloads are cached in the user's cache dirs (uv's and npm's), never relied on.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$repo/$target ;; esac
uv_version=0.13.9

step() { printf 'tests/setup.sh: %s\n' "$*" >&2; }

# Debian packages, installed only when a command is missing.
need=()
command -v git >/dev/null || need+=(git)
command -v tmux >/dev/null || need+=(tmux)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v chromium >/dev/null || need+=(chromium)
command -v pgrep >/dev/null || need+=(procps)
command -v dpkg-query >/dev/null || need+=(dpkg)
command -v python3 >/dev/null || need+=(python3 python3-pip python3-venv)
command -v npm >/dev/null || need+=(nodejs npm)
command -v ssh >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && command -v sbatch >/dev/null || need+=(slurm-wlm)
[ -x /usr/sbin/munged ] || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  step "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# uv, where seer's bootstrap would put it in the tests' cache.
cache=$target/tmp/seer-cache
uv=$cache/uv/bin/uv
if ! [ -x "$uv" ] || [ "$("$uv" --version | cut -d' ' -f2)" != "$uv_version" ]; then
  step "installing uv $uv_version into $cache/uv"
  mkdir -p "$cache"
  rm -rf "$cache/uv.setup"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --target "$cache/uv.setup" "uv==$uv_version"
  rm -rf "$cache/uv"
  mv "$cache/uv.setup" "$cache/uv"
fi
"$uv" --version >&2

# The test venv, remade when tests/requirements.txt changed.
venv=$target/test-env/python
if ! cmp -s tests/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  step "making the test Python env in $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python python3 "$venv"
  "$uv" pip install --quiet --python "$venv/bin/python" -r tests/requirements.txt
  cp tests/requirements.txt "$venv/requirements.txt"
fi

# The npm packages, reinstalled when the lock file changed; the copy of the lock under
# `installed-from/` is written last, so it marks a complete install.
npm_install() { # <folder in tests/> <install dir>
  local src=tests/$1 dir=$2
  if ! cmp -s "$src/package-lock.json" "$dir/installed-from/package-lock.json" 2>/dev/null; then
    step "installing the test npm packages of $src in $dir"
    rm -rf "$dir"
    mkdir -p "$dir/installed-from"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$src/package-lock.json" "$dir/installed-from/package-lock.json"
  fi
}
npm_install npm "$target/test-env/npm"
npm_install browser "$target/test-env/browser"

step "ready"

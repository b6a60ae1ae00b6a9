#!/usr/bin/env bash
# Virtual environments for comparing hwprofiles with IBM's analog kits (benchmarks/speed.py).
#
#   benchmarks/.venv-lightning  Python 3.11, torch==2.13.0 (CPU), aihwkit-lightning (pure PyTorch; it pins
#                               torch 2.13.0) and hwprofiles itself, so both tools run on the same torch.
#   benchmarks/.venv-aihwkit    Python 3.12 (aihwkit 1.2.0 ships CPU wheels for 3.12+ only), aihwkit==1.2.0
#                               with the torch it pulls (a multi-GB download) and hwprofiles itself.
#
# Usage: benchmarks/setup_aihwkit_envs.sh [lightning|aihwkit|all]   (default: all)
# Environment: PYTHON311, PYTHON312 (interpreters; default python3.11 / python3.12).
# Both directories are git-ignored. Re-running only installs what is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
WHICH="${1:-all}"
# hwprofiles' own dependencies, except torch/torchvision, which each environment pins itself.
HWPROFILES_DEPS=(pluggy "pydantic>=2.5,<3" scipy PyYAML typer rich matplotlib numpy numba fsspec)

find_python() {  # a usable interpreter for a version, also through pyenv's install directory
    local version="$1" override="$2"
    if [[ -n "$override" ]]; then echo "$override"; return; fi
    if "python$version" -c "" 2>/dev/null; then echo "python$version"; return; fi
    local candidate
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version"*/bin/python"$version"; do
        if [[ -x "$candidate" ]]; then echo "$candidate"; return; fi
    done
    echo "no Python $version found (set PYTHON${version//./})" >&2
    return 1
}

install_hwprofiles() {  # the checkout, without letting pip replace the pinned torch
    local venv="$1"
    "$venv/bin/pip" install -q "${HWPROFILES_DEPS[@]}"
    "$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT"
}

setup_lightning() {
    local venv="$HERE/.venv-lightning" py
    py="$(find_python 3.11 "${PYTHON311:-}")"
    [[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
    "$venv/bin/pip" install -q "torch==2.13.0"
    "$venv/bin/pip" install -q "aihwkit-lightning"
    "$venv/bin/pip" install -q setuptools wheel
    install_hwprofiles "$venv"
    "$venv/bin/python" -c "import torch, aihwkit_lightning, hwprofiles; print('lightning env: torch', torch.__version__, 'hwprofiles', hwprofiles.__version__)"
}

setup_aihwkit() {
    local venv="$HERE/.venv-aihwkit" py
    py="$(find_python 3.12 "${PYTHON312:-}")"
    [[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
    "$venv/bin/pip" install -q "aihwkit==1.2.0"
    "$venv/bin/pip" install -q setuptools wheel
    install_hwprofiles "$venv"
    "$venv/bin/python" -c "import torch, aihwkit, hwprofiles; print('aihwkit env: torch', torch.__version__, 'aihwkit', aihwkit.__version__)"
}

case "$WHICH" in
    lightning) setup_lightning ;;
    aihwkit) setup_aihwkit ;;
    all) setup_lightning; setup_aihwkit ;;
    *) echo "usage: $0 [lightning|aihwkit|all]" >&2; exit 2 ;;
esac

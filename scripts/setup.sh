#!/usr/bin/env bash
# Creates the two environments at the repository root (both ignored by git):
#   .venv       Python 3.11: torch 2.13.0 (CPU), snntorch, norse, neuroprop
#   .venv-lava  Python 3.10: lava-nc 0.10.0, numpy<2, the torch-free hardware/ package
# Safe to run again: an environment is rebuilt only when its inputs change.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() { echo "setup: $*" >&2; exit 1; }

# is_python EXE VERSION: EXE runs and is Python VERSION (e.g. 3.10).
is_python() { "$1" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$2')" >/dev/null 2>&1; }

# find_python VERSION: a python of that minor version on PATH, else from pyenv, else from uv.
find_python() {
    local v=$1 exe
    exe=$(command -v "python$v" 2>/dev/null) && is_python "$exe" "$v" && { echo "$exe"; return 0; }
    if command -v pyenv >/dev/null 2>&1; then
        for exe in $(ls -d "$(pyenv root)/versions/$v".*/bin/python"$v" 2>/dev/null | sort -V -r); do
            is_python "$exe" "$v" && { echo "$exe"; return 0; }
        done
    fi
    if command -v uv >/dev/null 2>&1; then
        uv python install "$v" >/dev/null 2>&1 || true
        exe=$(uv python find "$v" 2>/dev/null) && is_python "$exe" "$v" && { echo "$exe"; return 0; }
    fi
    return 1
}

# needs_build DIR STAMP: true when DIR must be (re)built because STAMP changed.
needs_build() { [ ! -x "$1/bin/python" ] || [ "$(cat "$1/.neuroprop-stamp" 2>/dev/null)" != "$2" ]; }

quiet_pip() { "$@" 2>&1 | grep -vE "^WARNING: Location .* is ignored" || true; return "${PIPESTATUS[0]}"; }

# --- main environment --------------------------------------------------------
stamp_main=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if needs_build .venv "$stamp_main"; then
    py311=$(find_python 3.11) || die "Python 3.11 not found on PATH, in pyenv or through uv; install one (e.g. 'pyenv install 3.11') and run again"
    echo "setup: building .venv with $py311"
    rm -rf .venv
    "$py311" -m venv .venv
    quiet_pip .venv/bin/python -m pip install -q --upgrade pip
    # torch first and pinned: a bare requirement would pull CUDA wheels.
    quiet_pip .venv/bin/python -m pip install -q "torch==2.13.0"
    quiet_pip .venv/bin/python -m pip install -q -e ".[dev]"
    # norse declares torchvision (CUDA build, breaks with CPU torch): its real needs come from pyproject.
    quiet_pip .venv/bin/python -m pip install -q --no-deps "norse==1.1.0"
    .venv/bin/python -c "import torch, snntorch, norse.torch, neuroprop" 2>/dev/null \
        || die ".venv was built but 'import torch, snntorch, norse.torch, neuroprop' fails; delete .venv and run again"
    echo "$stamp_main" > .venv/.neuroprop-stamp
fi

# --- Lava environment --------------------------------------------------------
stamp_lava=$(cat scripts/setup.sh | sha256sum | cut -c1-16)
if needs_build .venv-lava "$stamp_lava"; then
    py310=$(find_python 3.10) || die "Python 3.10 (needed by lava-nc) not found on PATH, in pyenv or through uv; install one (e.g. 'pyenv install 3.10') and run again"
    echo "setup: building .venv-lava with $py310"
    rm -rf .venv-lava
    "$py310" -m venv .venv-lava
    quiet_pip .venv-lava/bin/python -m pip install -q --upgrade pip
    quiet_pip .venv-lava/bin/python -m pip install -q "lava-nc==0.10.0" "numpy<2" pytest
    # The hardware/ package is used in place (no torch, no neuroprop console script).
    site=$(.venv-lava/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    echo "$root" > "$site/neuroprop-hardware.pth"
    .venv-lava/bin/python -c "import lava, hardware" 2>/dev/null \
        || die ".venv-lava was built but 'import lava, hardware' fails; delete .venv-lava and run again"
    echo "$stamp_lava" > .venv-lava/.neuroprop-stamp
fi

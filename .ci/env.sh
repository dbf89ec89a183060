#!/usr/bin/env bash
# Usage: bash .ci/env.sh [--bench] [--latest] CMD [ARGS...]
#
# Makes sure the project's virtualenv (.venv in the repo) is set up, then runs CMD inside it. Idempotent: a stamp in
# .venv keyed on pyproject.toml and the constraints file skips the installs when nothing changed, so later runs cost
# only a hash. --bench also installs the `bench` extra (torchinfo, onnxscript) for bench/run.py.
#
# Every install is pinned by .ci/constraints.txt (known-good versions). --latest instead uses a separate .venv-latest
# with only torch and torchvision pinned, so the newest releases pip resolves can be tried without touching .venv.
#
# Order matters: torch is installed pinned FIRST, so that pip takes the CPU build of that exact version; anything that
# pulls an unpinned torch in before it would download the multi-GB CUDA build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
constraints="$root/.ci/constraints.txt"
log="$(mktemp "${TMPDIR:-/tmp}/archc-env.XXXXXX")"
trap 'rm -f "$log"' EXIT

extras="test"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bench) extras="test,bench"; shift ;;
        --latest)
            venv="$root/.venv-latest"
            constraints="$log.torch-only"
            grep -E '^torch(vision)?==' "$root/.ci/constraints.txt" >"$constraints"
            trap 'rm -f "$log" "$log.torch-only"' EXIT
            shift ;;
        *) break ;;
    esac
done
stamp="$venv/.archc-env-stamp"
if [[ $# -eq 0 ]]; then
    echo "usage: bash .ci/env.sh [--bench] [--latest] CMD [ARGS...]" >&2
    exit 2
fi

# Run a step quietly; on failure show what it printed and stop.
quiet() {
    local what="$1"
    shift
    if ! "$@" >"$log" 2>&1; then
        echo "env.sh: $what failed:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

# System programs, from Debian packages: Graphviz's `dot` renders diagrams (archc runs it itself); the test suite
# also drives a headless Chromium (the HTML viewer) and pdflatex with TikZ (the LaTeX figures and tables).
apt_packages=()
command -v dot >/dev/null 2>&1 || apt_packages+=(graphviz)
if [[ "$(basename "$1")" == "pytest" ]]; then
    command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
    command -v pdflatex >/dev/null 2>&1 || apt_packages+=(texlive-latex-base)
    kpsewhich tikz.sty >/dev/null 2>&1 || apt_packages+=(texlive-pictures)
fi
if [[ ${#apt_packages[@]} -gt 0 ]]; then
    sudo_cmd=()
    if [[ "$(id -u)" -ne 0 ]]; then
        sudo_cmd=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    quiet "apt-get update" "${sudo_cmd[@]}" apt-get update -qq
    quiet "apt-get install ${apt_packages[*]}" "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
        "${apt_packages[@]}"
fi

py="$venv/bin/python"
if ! "$py" -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; then
    base="${PYTHON:-python3}"
    quiet "creating .venv with $base" "$base" -m venv --clear "$venv"
    rm -f "$stamp"
fi

want_hash="$(cat "$root/pyproject.toml" "$constraints" | sha256sum | cut -d' ' -f1)"
satisfied=0
if [[ -f "$stamp" ]] && [[ "$(head -n1 "$stamp")" == "$want_hash" ]]; then
    satisfied=1
    for extra in ${extras//,/ }; do
        grep -qx "$extra" <(tail -n +2 "$stamp") || satisfied=0
    done
fi

if [[ $satisfied -eq 0 ]]; then
    pip=("$py" -m pip install -q --disable-pip-version-check -c "$constraints")
    quiet "installing torch" "${pip[@]}" "torch==2.13.0"
    quiet "installing torchvision" "${pip[@]}" "torchvision==0.28.0"
    quiet "installing archc[$extras]" "${pip[@]}" -e "$root[$extras]"
    # Guard against a resolver surprise: a CUDA torch would be huge and is never wanted here.
    if ! "$py" -c 'import importlib.metadata as m, sys; sys.exit(m.version("torch").split("+")[0] != "2.13.0")'; then
        echo "env.sh: torch is not 2.13.0 after install" >&2
        exit 1
    fi
    { echo "$want_hash"; tr ',' '\n' <<<"$extras"; } >"$stamp"
fi

export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
unset PYTHONHOME
exec "$@"

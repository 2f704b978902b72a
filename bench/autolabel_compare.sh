#!/usr/bin/env bash
# Autolabel 0.0.16 vs assay through one llama-cpp-python server (see bench/autolabel_compare.py).
# Sets up what the comparison needs, then runs it: a release build of assay, the SmolLM2 model in the cache,
# llama-cpp-python[server] 0.3.36 (wheel built once, as .ci/run does), and Autolabel in its own venv.
#
# Autolabel's own requirements pin langchain 0.0.226 and pull torch (for a few-shot selector this zero-shot run
# never uses) plus typer[all], whose resolution backtracks for a long time; the venv gets Autolabel without its
# dependency list and the packages its OpenAI path imports, at versions langchain 0.0.226 works with.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${AUTOLABEL_VENV:-/var/tmp/autolabel-venv}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import autolabel, langchain, openai" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "langchain==0.0.226" "openai==0.28.1" tiktoken pandas \
    loguru scipy scikit-learn jsonschema tabulate "typer>=0.9" rich regex nervaluate tenacity "SQLAlchemy>=2.0.19" \
    wget simple-term-menu "ipywidgets==8.0.6" matplotlib "pydantic<2"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "refuel-autolabel==0.0.16"
fi
if ! python3 -c "import llama_cpp.server.app, uvicorn" 2>/dev/null; then
  echo "llama-cpp-python[server]==0.3.36 is missing: run the served-models part of .ci/run first" >&2
  exit 1
fi
cargo build -q --release -p assay
export ASSAY_HOME="${ASSAY_HOME:-$HOME/.cache/assay}"
"${CARGO_TARGET_DIR:-target}/release/assay" model fetch smollm2-135m-instruct >/dev/null
exec python3 bench/autolabel_compare.py --assay "${CARGO_TARGET_DIR:-target}/release/assay" "$@"

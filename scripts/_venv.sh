# Sourced by scripts/demo and scripts/test: create .venv from pyproject.toml when needed.
# Reinstalls only when pyproject.toml changed since the last install (a stamp file in .venv).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=${1:-}
venv="$root/.venv"
py=${PALERMO_PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating $venv" >&2
  "$py" -m venv "$venv"
fi
stamp="$venv/.palermo-installed${extras:+-$extras}"
if [[ ! -f "$stamp" || "$root/pyproject.toml" -nt "$stamp" ]]; then
  echo "installing palermo${extras:+[$extras]} into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root${extras:+[$extras]}"
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"

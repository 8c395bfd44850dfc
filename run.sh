#!/usr/bin/env bash
# ./run.sh [boot options]   install into .venv on first use, then boot the machine
# ./run.sh test [pytest args]   install, then run every test
# ./run.sh bench [names]        install, then run the benchmarks
# ./run.sh lint                 ruff check + ruff format --check
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
    echo "run.sh: installing ntmodel into $VENV ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    touch "$VENV/.installed"
  fi
}

case "${1:-}" in
  test)
    shift; ensure_venv
    exec "$VENV/bin/python" -m pytest "$@" ;;
  bench)
    shift; ensure_venv
    exec "$VENV/bin/python" -m tests.bench "$@" ;;
  lint)
    shift; ensure_venv
    "$VENV/bin/ruff" check .
    exec "$VENV/bin/ruff" format --check . ;;
  ntctl)
    shift; ensure_venv
    exec "$VENV/bin/ntctl" "$@" ;;
  *)
    ensure_venv
    exec "$VENV/bin/python" -m ntctl boot "$@" ;;
esac

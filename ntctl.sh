#!/usr/bin/env bash
# ./ntctl.sh ARGS: run ntctl from the checkout's .venv (same as .venv/bin/ntctl).
exec "$(dirname "$0")/.venv/bin/ntctl" "$@"

#!/usr/bin/env bash
# Smoke-run the real TUI in tmux: start it, read the screen (capture-pane), answer through keys, switch views,
# quit. Exit 0 when every step is seen on screen; otherwise print the last screen and exit 1.
#
#   scripts/tui_smoke.sh          # the real app (`python -m cli`, no arguments)
# (Textual draws on stderr, so the app's stderr is left alone.)
#   scripts/tui_smoke.sh --fake   # the real app with the fake advisor and tools of tests/tui/fakes.py
#
# Env: PYTHON (default .venv/bin/python), SMOKE_OUT (folder for screens; default a temp dir).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${SMOKE_OUT:-$(mktemp -d)}
SESSION="tunewise-smoke-$$"
MODE=${1:-real}
command -v tmux >/dev/null || { echo "tmux is not installed" >&2; exit 2; }

if [ "$MODE" = "--fake" ]; then
  APP="$PY -c 'from tests.tui.fakes import run_fake_app; run_fake_app()'"
else
  APP="$PY -m cli"
fi
mkdir -p "$OUT"
rm -f "$OUT/exit.txt"
cleanup() { tmux kill-session -t "$SESSION" 2>/dev/null || true; }
trap cleanup EXIT

ENVS="PYTHONPATH='$ROOT' TERM=xterm-256color HF_HUB_OFFLINE=1"
for v in TUNEWISE_HOME TUNEWISE_CACHE; do
  if [ -n "${!v:-}" ]; then ENVS="$ENVS $v='${!v}'"; fi
done
tmux new-session -d -s "$SESSION" -x 100 -y 30 \
  "cd '$ROOT' && env $ENVS $APP; echo \$? >'$OUT/exit.txt'; sleep 30"

screen() { tmux capture-pane -p -t "$SESSION" >"$OUT/screen.txt" 2>/dev/null || true; }
wait_for() {  # wait_for TEXT SECONDS STEP-NAME
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    screen
    if grep -qF -- "$1" "$OUT/screen.txt"; then cp "$OUT/screen.txt" "$OUT/$3.txt"; echo "ok: $3"; return 0; fi
    sleep 0.2
  done
  echo "FAILED: '$1' not on screen after $2 s ($3). Last screen:" >&2
  cat "$OUT/screen.txt" >&2
  exit 1
}

wait_for "How would you like to begin" 60 first-question
wait_for "tunewise" 1 names-the-app
tmux send-keys -t "$SESSION" Tab Enter   # Tab to Answer, Enter: the default (my own task)
if [ "$MODE" = "--fake" ]; then
  wait_for "How many labelled examples" 20 advisor-question
  tmux send-keys -t "$SESSION" "lots" Enter
  wait_for "is not a number" 10 bad-number-rejected
  tmux send-keys -t "$SESSION" C-u "2500" Enter
  wait_for "What fraction does your best prompt" 20 next-question
fi
tmux send-keys -t "$SESSION" F5
wait_for "best val loss" 20 runs-view
tmux send-keys -t "$SESSION" F1
wait_for "Decision path" 10 back-to-advisor
tmux send-keys -t "$SESSION" C-q
deadline=$((SECONDS + 20))
while [ ! -s "$OUT/exit.txt" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
rc=$(cat "$OUT/exit.txt" 2>/dev/null || echo "none")
if [ "$rc" != "0" ]; then
  echo "FAILED: the app did not exit cleanly after ctrl+q (exit: $rc)" >&2
  screen; cat "$OUT/screen.txt" >&2
  exit 1
fi
echo "ok: quit (screens in $OUT)"

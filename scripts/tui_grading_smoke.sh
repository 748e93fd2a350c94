#!/usr/bin/env bash
# The grading pane in the real app, in tmux: a prompt baseline's 40 logged outputs (seeded into a temporary run
# log), ctrl+g, ten grades (g/b/s), q, quit the app; start it again, ctrl+g: the ten grades are kept, grading
# goes on at the eleventh sampled row, and the share with its Wilson CI is on screen. Exit 0 when every step
# is seen; otherwise print the last screen and exit 1.
#
#   scripts/tui_grading_smoke.sh        Env: PYTHON (default .venv/bin/python), SMOKE_OUT (screens folder)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${SMOKE_OUT:-$(mktemp -d)}
HOME_DIR=$(mktemp -d)
SESSION="tunewise-grading-$$"
command -v tmux >/dev/null || { echo "tmux is not installed" >&2; exit 2; }
cleanup() { tmux kill-session -t "$SESSION" 2>/dev/null || true; rm -rf "$HOME_DIR"; }
trap cleanup EXIT
mkdir -p "$OUT"

# a completed prompt baseline with 40 free-text outputs, as prompt-eval logs it
TUNEWISE_HOME="$HOME_DIR" PYTHONPATH="$ROOT" "$PY" - <<'PY'
from tools.runlog import RunLog
log = RunLog()
run_id = log.start_run("prompt_eval", config={"metric": "chrf"})
eval_id = log.log_evaluation(run_id, "prompt_eval", metric="chrf", value=0.28, n=40, test_sha256="sha",
                             details={"variant": "baseline"})
log.log_predictions(run_id, eval_id, [{"idx": i, "input": f"Summarise dialogue {i}: A and B agree to meet at noon.",
                                       "expected": f"A and B will meet at noon ({i}).",
                                       "prediction": f"They talk about meeting ({i})."} for i in range(40)])
log.update_run(run_id, status="completed")
PY

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
start() {
  tmux new-session -d -s "$SESSION" -x 110 -y 32 \
    "cd '$ROOT' && env PYTHONPATH='$ROOT' TERM=xterm-256color HF_HUB_OFFLINE=1 TUNEWISE_HOME='$HOME_DIR' $PY -m cli; sleep 30"
  wait_for "How would you like to begin" 90 "first-question-$1"
}

start 1
tmux send-keys -t "$SESSION" C-g
wait_for "(1 of 30)" 30 pane-open
n=1
for k in g g g g g g b b g s; do
  tmux send-keys -t "$SESSION" "$k"
  n=$((n + 1))
  [ $n -le 30 ] && wait_for "($n of 30)" 15 "grade-$n"
done
wait_for "accepted 7 of 9 graded: 77.8% [45.3%–93.7%]" 10 share-and-ci
tmux send-keys -t "$SESSION" q
wait_for "How would you like to begin" 10 pane-closed
tmux send-keys -t "$SESSION" C-q
sleep 2
tmux kill-session -t "$SESSION" 2>/dev/null || true

start 2
tmux send-keys -t "$SESSION" C-g
wait_for "(11 of 30)" 30 resumed-at-eleven
wait_for "accepted 7 of 9 graded: 77.8% [45.3%–93.7%]" 5 share-kept
tmux send-keys -t "$SESSION" q
echo "all steps seen; screens in $OUT"

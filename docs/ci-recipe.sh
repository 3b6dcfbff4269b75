#!/usr/bin/env bash
# The CI/CD recipe of docs/ci.md: train on a pull request, compare against the
# champion, register, request the production gate, wait for the human decision,
# deploy as canary. Any refusal fails the pipeline with mlp's exit code
# (1 failed, 2 usage, 3 refused, 4 not found, 5 timed out).
#
# Needs: MLP_URL, MLP_TOKEN (a CI user with the ML engineer role), and
# PROJECT, ENDPOINT, MODEL (PROJECT/NAME), CODE_DIR; optional EXPERIMENT, PARAMS,
# STAGE, CANARY, GATE_TIMEOUT, JOB_TIMEOUT.
set -euo pipefail

: "${PROJECT:?}" "${ENDPOINT:?}" "${MODEL:?}" "${CODE_DIR:?}"
EXPERIMENT="${EXPERIMENT:-ci}"
STAGE="${STAGE:-Production}"
CANARY="${CANARY:-10}"
JOB_TIMEOUT="${JOB_TIMEOUT:-1h}"
GATE_TIMEOUT="${GATE_TIMEOUT:-1h}"
PARAMS="${PARAMS:-}"
OUT="${OUT:-mlp-out}"
mkdir -p "$OUT"
json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

# 1. Train: the job's exit status is the step's (0 succeeded, 1 failed, 5 timed out).
param_args=()
for p in $PARAMS; do param_args+=(--param "$p"); done
mlp jobs submit "$CODE_DIR" --project "$PROJECT" --experiment "$EXPERIMENT" \
  --command "python train.py" "${param_args[@]}" --wait --timeout "$JOB_TIMEOUT" --output json > "$OUT/job.json"
RUN_ID=$(json "$OUT/job.json" '["run_id"]')
echo "trained run $RUN_ID"

# 2. Compare against the champion: the best earlier run of the experiment.
mlp runs search "$PROJECT/$EXPERIMENT" --column metrics.accuracy \
  --order-by "metrics.accuracy DESC" --output json > "$OUT/runs.json"
python3 - "$OUT/runs.json" "$RUN_ID" <<'PY'
import json, sys
runs, candidate = json.load(open(sys.argv[1])), sys.argv[2]
mine = [r for r in runs if r["run_id"] == candidate]
others = [r["metrics.accuracy"] for r in runs if r["run_id"] != candidate and r.get("metrics.accuracy") is not None]
if not mine or mine[0].get("metrics.accuracy") is None:
    sys.exit("the candidate run logged no accuracy")
score, best = mine[0]["metrics.accuracy"], max(others, default=None)
print(f"candidate accuracy {score:.4f}, champion {best}")
if best is not None and score < best - 0.01:
    sys.exit("the candidate is worse than the champion")
PY

# 3. Register the run's model as a new version.
mlp models register "$RUN_ID/model" "$MODEL" --output json > "$OUT/version.json"
VERSION=$(json "$OUT/version.json" '["version"]')
echo "registered $MODEL version $VERSION"

# 4. Ask for the production gate, with the run as evidence, and wait for a human:
#    exit 0 on Go, 3 on No-go/Hold, 5 when nobody decided in time.
mlp gates request "$PROJECT" "$STAGE" --evidence "run:$RUN_ID" --output json > "$OUT/gate.json"
mlp gates wait "$PROJECT" "$STAGE" --timeout "$GATE_TIMEOUT" --interval "${GATE_INTERVAL:-10s}"

# 5. Deploy as a canary taking CANARY percent of the traffic.
mlp deploy "$ENDPOINT" "$MODEL" "$VERSION" --canary "$CANARY" --output json > "$OUT/deploy.json"
mlp endpoints status "$ENDPOINT"

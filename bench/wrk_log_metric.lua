-- One log-metric per request, each a new step of one run's metric (a training loop).
package.path = package.path .. ";" .. os.getenv("BENCH_LUA_DIR") .. "/?.lua"
require("wrk_common")
local run_id, n = os.getenv("BENCH_RUN_ID"), 0

function init(args)
  init_common()
end

function request()
  n = n + 1
  local step = tid * 100000000 + n
  return json_request("/api/2.0/mlflow/runs/log-metric", string.format(
    '{"run_id":"%s","key":"loss","value":%f,"timestamp":%d,"step":%d}', run_id, 1 / n, 1764000000000 + n, step))
end

-- One log-batch of 100 metric points per request (10 keys x 10 steps).
package.path = package.path .. ";" .. os.getenv("BENCH_LUA_DIR") .. "/?.lua"
require("wrk_common")
local run_id, n = os.getenv("BENCH_RUN_ID"), 0

function init(args)
  init_common()
end

function request()
  n = n + 1
  local points = {}
  for j = 0, 99 do
    local step = (tid * 100000000 + n) * 10 + j % 10
    points[#points + 1] = string.format('{"key":"m%d","value":%f,"timestamp":%d,"step":%d}',
      math.floor(j / 10), j / (n + 1), 1764000000000 + n, step)
  end
  return json_request("/api/2.0/mlflow/runs/log-batch",
    string.format('{"run_id":"%s","metrics":[%s]}', run_id, table.concat(points, ",")))
end

-- runs/search with a metric + param filter and an order, first page of 10.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA_DIR") .. "/?.lua"
require("wrk_common")
local body = string.format(
  '{"experiment_ids":["%s"],"filter":"metrics.acc > 0.5 AND params.p1 = \'a\'","order_by":["metrics.acc DESC"],"max_results":10}',
  os.getenv("BENCH_EXPERIMENT_ID"))

function init(args)
  init_common()
end

function request()
  return json_request("/api/2.0/mlflow/runs/search", body)
end

-- Shared by the tracking_load.py scripts: the JSON headers, the bearer token when one
-- is given (our server), and a distinct number per wrk thread so that concurrent
-- writers never send the very same metric point twice.
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function json_request(path, body)
  return wrk.format("POST", path, nil, body)
end

function init_common()
  wrk.headers["Content-Type"] = "application/json"
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function done(summary, latency, requests)
  io.write(string.format("BENCH errors=%d non2xx=%d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end

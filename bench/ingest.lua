-- wrk script for bench/ingest.py: POSTs JSON arrays of BATCH records of about 1 KB,
-- each record unique (a per-thread random tag and a counter), so none is dropped as a
-- duplicate; the token comes from TOKEN.
local counter = 0
local batch = tonumber(os.getenv("BATCH") or "1")
local pad = string.rep("x", 940)
local headers = {["Authorization"] = "Bearer " .. os.getenv("TOKEN"), ["Content-Type"] = "application/json"}
local tag = nil

request = function()
  if tag == nil then
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
    tag = tostring(math.random(1, 1000000000))
  end
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    parts[i] = '{"sensor":"s' .. (counter % 50) .. '","n":' .. counter .. ',"v":1.5,"run":"' .. tag .. '","pad":"' .. pad .. '"}'
  end
  return wrk.format("POST", nil, headers, "[" .. table.concat(parts, ",") .. "]")
end

-- bench/post.lua: POST /api/v1/data, a published item each time, as the
-- user of the access token in BENCH_TOKEN (its owner).
local counter = 0
local token = os.getenv("BENCH_TOKEN") or ""

request = function()
  counter = counter + 1
  return wrk.format("POST", "/api/v1/data",
    { ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token },
    '{"title":"bench item ' .. counter .. '","category":"food",' ..
    '"status":"published"}')
end

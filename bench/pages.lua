-- bench/pages.lua: cached reads spread over BENCH_PAGES distinct list
-- answers (a working set), each request one of them at random: page
-- sizes 10 to 49 and pages 1 to what the seeded ~700 published items
-- fill, so that no answer is an empty list.
local n = tonumber(os.getenv("BENCH_PAGES") or "100")
local paths = {}

for i = 0, n - 1 do
  local size = 10 + (i % 40)
  local pages = math.floor(700 / size)
  local page = 1 + (math.floor(i / 40) % pages)
  paths[i + 1] = string.format("/api/v1/data/list?page=%d&page_size=%d", page, size)
end

function init(args)
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(4)
  f:close()
  local seed = 0
  for i = 1, 4 do seed = seed * 256 + b:byte(i) end
  math.randomseed(seed)
end

request = function()
  return wrk.format("GET", paths[math.random(n)])
end

-- bench/login.lua: POST /api/v1/user/login with a fresh wx.login code per
-- request, for repeat users: "user-uN-..." is user N to the WeChat
-- stand-in (the same openid every time), and the rest of the code makes it
-- one never used before, as every code from wx.login is.
local counter = 0
local users = tonumber(os.getenv("WXAPP_BENCH_USERS") or "10000")
local prefix

function init(args)
  -- Each thread its own prefix, from the kernel: wrk's threads start
  -- alike, so a clock-seeded random sequence could repeat across them.
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(8)
  f:close()
  prefix = b:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  local seed = 0
  for i = 1, 4 do seed = seed * 256 + b:byte(i) end
  math.randomseed(seed)
end

request = function()
  counter = counter + 1
  local code = string.format("user-u%d-%s%d", math.random(users), prefix,
    counter)
  return wrk.format("POST", "/api/v1/user/login",
    { ["Content-Type"] = "application/json" },
    '{"code":"' .. code .. '"}')
end

-- Login flood: POST /login cycling through "username<TAB>password" lines.
--   wrk ... -s bench/login.lua URL -- CREDENTIALS_FILE [forwarded]
-- "forwarded": each request also carries X-Forwarded-For with one of 256
-- client addresses (10.0.0.1-10.0.1.0), consecutive requests from different
-- ones, as if a trusted reverse proxy forwarded many clients (the daemon runs
-- with --trusted-proxy 127.0.0.1). Without it every request comes from
-- 127.0.0.1, one client.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
setup = common.setup
done = common.done

local reqs = {}
local i = 0
non2xx, s401, s429, s503 = 0, 0, 0, 0

local function json_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function init(args)
   local bodies = {}
   for _, line in ipairs(common.lines(args[1])) do
      local user, pw = line:match("^([^\t]+)\t(.+)$")
      table.insert(bodies, '{"username":' .. json_string(user) .. ',"password":' .. json_string(pw) .. '}')
   end
   local clients = { false }
   if args[2] == "forwarded" then
      clients = {}
      for k = 1, 256 do
         table.insert(clients, string.format("10.0.%d.%d", math.floor(k / 256), k % 256))
      end
   end
   for _, body in ipairs(bodies) do
      for _, client in ipairs(clients) do
         local headers = { ["Content-Type"] = "application/json" }
         if client then headers["X-Forwarded-For"] = client end
         table.insert(reqs, wrk.format("POST", "/api/v1/auth/login", headers, body))
      end
   end
   i = tid or 0
end

function request()
   i = i % #reqs + 1
   return reqs[i]
end

function response(status, hdrs, body)
   if status < 200 or status > 299 then non2xx = non2xx + 1 end
   if status == 401 then s401 = s401 + 1
   elseif status == 429 then s429 = s429 + 1
   elseif status == 503 then s503 = s503 + 1 end
end

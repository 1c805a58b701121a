-- Login flood: POST /login cycling through "username<TAB>password" lines.
--   wrk ... -s bench/login.lua URL -- CREDENTIALS_FILE
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
setup = common.setup
done = common.done

local reqs = {}
local i = 0
non2xx = 0

local function json_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function init(args)
   local headers = { ["Content-Type"] = "application/json" }
   for _, line in ipairs(common.lines(args[1])) do
      local user, pw = line:match("^([^\t]+)\t(.+)$")
      local body = '{"username":' .. json_string(user) .. ',"password":' .. json_string(pw) .. '}'
      table.insert(reqs, wrk.format("POST", "/api/v1/auth/login", headers, body))
   end
   i = tid or 0
end

function request()
   i = i % #reqs + 1
   return reqs[i]
end

function response(status, hdrs, body)
   if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

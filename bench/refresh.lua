-- Refresh with rotation: every request presents a refresh token that has
-- never been used, so the server never sees a reuse (which would revoke the
-- family after its 10 s grace window). Each thread owns a pool of tokens
-- from pre-logged-in sessions (its share of TOKENS_FILE); request() takes
-- the oldest, response() parses the body and puts the successor back. A
-- connection has one request in flight, so a pool at least as large as the
-- thread's connections never runs dry unless requests fail; if it does,
-- `starved` counts the requests sent with a dummy token (they fail, 401).
--   wrk ... -s bench/refresh.lua URL -- TOKENS_FILE THREADS [ceiling]
-- "ceiling" (the hello server, which returns no tokens) resends one token.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
setup = common.setup
done = common.done

local pool, head, tail = {}, 1, 0
local ceiling = false
local headers = { ["Content-Type"] = "application/json" }
local path = "/api/v1/auth/refresh"
non2xx = 0
starved = 0

local function push(t) tail = tail + 1; pool[tail] = t end
local function pop()
   if head > tail then return nil end
   local t = pool[head]; pool[head] = nil; head = head + 1
   return t
end

function init(args)
   local mine = common.share(common.lines(args[1]), tid, tonumber(args[2]) or 1)
   ceiling = args[3] == "ceiling"
   for _, t in ipairs(mine) do push(t) end
end

function request()
   local t
   if ceiling then t = pool[head] else t = pop() end
   if t == nil then
      starved = starved + 1
      t = "starved.dummy.token"
   end
   return wrk.format("POST", path, headers, '{"refreshToken":"' .. t .. '"}')
end

function response(status, hdrs, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      return
   end
   if not ceiling then
      local t = body:match('"refreshToken"%s*:%s*"([^"]+)"')
      if t then push(t) else non2xx = non2xx + 1 end
   end
end

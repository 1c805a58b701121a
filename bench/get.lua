-- Authenticated GET with a bearer token, at a fixed path or cycling through
-- the ids in a file (one per line) for paths with "{id}".
--   wrk ... -s bench/get.lua URL -- TOKEN PATH [IDS_FILE]
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
setup = common.setup
done = common.done

local reqs = nil
local i = 0

function init(args)
   local token, path, ids_file = args[1], args[2], args[3]
   wrk.headers["Authorization"] = "Bearer " .. token
   if ids_file ~= nil and ids_file ~= "" then
      -- Pre-format every request once: no per-request string building.
      reqs = {}
      for _, id in ipairs(common.lines(ids_file)) do
         table.insert(reqs, wrk.format("GET", (path:gsub("{id}", id))))
      end
      i = tid or 0
   else
      reqs = { wrk.format("GET", path) }
   end
end

function request()
   i = i % #reqs + 1
   return reqs[i]
end

-- Shared by every wrk script in bench/: thread bookkeeping and one JSON
-- summary line ("BENCH_JSON {...}") that bench/bench.py parses.
--   local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
-- Scripts that count statuses themselves keep per-thread counters named in
-- common.counters (non2xx, starved; s401, s429, s503 for the refusals a
-- login flood meets); done() sums them over the threads.
local common = {}
common.threads = {}
common.counters = { "non2xx", "starved", "s401", "s429", "s503" }

function common.setup(thread)
   table.insert(common.threads, thread)
   thread:set("tid", #common.threads)
   thread:set("nthreads", 0) -- filled in by init()
end

-- Lines of a file, without empty ones.
function common.lines(path)
   local out = {}
   local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
   for line in f:lines() do
      if line ~= "" then table.insert(out, line) end
   end
   f:close()
   return out
end

-- The share of `items` that belongs to thread `tid` of `n` (1-based).
function common.share(items, tid, n)
   local out = {}
   for i, v in ipairs(items) do
      if (i - 1) % n == tid - 1 then table.insert(out, v) end
   end
   if #out == 0 then out = items end
   return out
end

function common.done(summary, latency, requests)
   local sums = {}
   for _, name in ipairs(common.counters) do sums[name] = 0 end
   local counted = false
   for _, t in ipairs(common.threads) do
      for _, name in ipairs(common.counters) do
         local v = t:get(name)
         if v ~= nil then
            sums[name] = sums[name] + v
            if name == "non2xx" then counted = true end
         end
      end
   end
   local e = summary.errors
   local fields = {
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"bytes":%d', summary.bytes),
      string.format('"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d',
                    e.connect, e.read, e.write, e.timeout, e.status),
      string.format('"non2xx":%d,"non2xx_counted":%s,"starved":%d',
                    sums.non2xx, tostring(counted), sums.starved),
      string.format('"s401":%d,"s429":%d,"s503":%d', sums.s401, sums.s429, sums.s503),
      string.format('"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d',
                    latency:percentile(50), latency:percentile(90), latency:percentile(99),
                    latency:percentile(99.9), latency.mean, latency.max),
   }
   io.write("BENCH_JSON {" .. table.concat(fields, ",") .. "}\n")
end

return common

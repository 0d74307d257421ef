-- Random-key lookups for wrk (benches/access_times.rs, figures 3 and 5).
--
--   wrk -t2 -c50 -d10s -s benches/wrk/lookup.lua http://HOST:PORT -- KEYS TOKEN PURPOSE PREFIX
--
-- KEYS: a file of keys, one a line (at most 1 000 000 are read); each request is
-- `GET PREFIX..key` for a key picked at random (each wrk thread seeded differently, the same
-- sequence every run). TOKEN: sent as `Authorization: Bearer TOKEN` unless empty. PURPOSE:
-- sent as `X-DAGR-Purpose` unless empty. PREFIX: the path before the key, e.g.
-- `/api/v1/datasets/persons/records/` or ROAPI's `/api/kv/persons_open/`.
--
-- At the end one line is printed for the bench to parse (latencies in microseconds):
--   WRK_RESULT requests=N duration_us=N p50_us=N p99_us=N non2xx=N connect=N read=N write=N timeout=N

local MAX_KEYS = 1000000
local threads = 0

-- Runs in the main Lua state once per thread, before the threads start.
function setup(thread)
   thread:set("thread_number", threads)
   threads = threads + 1
end

local keys = {}
local headers = {}
local prefix = "/"

-- Runs in each thread's own Lua state with the arguments after `--`.
function init(args)
   local file, token, purpose = args[1], args[2] or "", args[3] or ""
   prefix = args[4] or "/"
   if file == nil then
      error("lookup.lua: usage: -- KEYS TOKEN PURPOSE PREFIX")
   end
   for line in io.lines(file) do
      if line ~= "" then
         keys[#keys + 1] = line
         if #keys >= MAX_KEYS then
            break
         end
      end
   end
   if #keys == 0 then
      error("lookup.lua: no keys in " .. file)
   end
   if token ~= "" then
      headers["Authorization"] = "Bearer " .. token
   end
   if purpose ~= "" then
      headers["X-DAGR-Purpose"] = purpose
   end
   math.randomseed(7919 * ((thread_number or 0) + 1))
end

function request()
   return wrk.format("GET", prefix .. keys[math.random(#keys)], headers)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.status, e.connect, e.read, e.write, e.timeout))
end

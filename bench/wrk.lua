-- wrk script of the benchmark: every request goes to a tenant drawn at
-- random from the whole tenant list, with that tenant's Host and Bearer
-- token.  The requests are formatted once, in init(), so that the
-- per-request cost on the load side is one table lookup (and, for Zipf,
-- one comparison).
--
--   BENCH_TENANTS  number of tenants K (ids t000000 ... t<K-1>)
--   BENCH_DIST     "uniform" (the default) or "zipf": the tenant of rank
--                  r (t000000 is rank 1) drawn with probability
--                  proportional to 1/r, by Vose's alias method
--   BENCH_DOMAIN   the claw_domain (default claw.bench)
--   BENCH_SEED     seed of the random draw (default 1)
--   BENCH_ORDER    "random" (the default, the timed runs) or "seq": the
--                  warm-up pass, every tenant in turn, t000000 first, and
--                  wrk stops after K answers, so that every
--                  tenant has been visited once (pools filled) whatever
--                  the contestant's speed
--
-- done() prints one machine-readable line for bench/bench.pl:
--   BENCH requests=N duration_us=N p50_us=N p99_us=N non2xx=N errors=N

local K      = tonumber(os.getenv("BENCH_TENANTS") or "10")
local domain = os.getenv("BENCH_DOMAIN") or "claw.bench"
local seed   = tonumber(os.getenv("BENCH_SEED") or "1")
local order  = os.getenv("BENCH_ORDER") or "random"
local dist   = os.getenv("BENCH_DIST") or "uniform"

local reqs = {}
local prob, alias = {}, {}

-- the alias table of 1/r over r = 1 .. K: a draw is one uniform column
-- and one biased coin
local function zipf_table()
   local h = 0
   for r = 1, K do h = h + 1 / r end
   local small, large = {}, {}
   for r = 1, K do
      prob[r] = K / (r * h)
      alias[r] = r
      if prob[r] < 1 then small[#small + 1] = r else large[#large + 1] = r end
   end
   while #small > 0 and #large > 0 do
      local s = table.remove(small)
      local l = large[#large]
      alias[s] = l
      prob[l] = prob[l] + prob[s] - 1
      if prob[l] < 1 then
         table.remove(large)
         small[#small + 1] = l
      end
   end
   for _, r in ipairs(large) do prob[r] = 1 end
   for _, r in ipairs(small) do prob[r] = 1 end
end

function init(args)
   math.randomseed(seed)
   for i = 0, K - 1 do
      local id = string.format("t%06d", i)
      reqs[i + 1] = wrk.format("GET", "/", {
         ["Host"]          = id .. "." .. domain,
         ["Authorization"] = "Bearer tok-" .. id,
      })
   end
   if dist == "zipf" then
      zipf_table()
   end
end

if order == "seq" then
   local pos, answers = 0, 0

   function request()
      pos = pos % K + 1
      return reqs[pos]
   end

   -- defined only for the warm-up pass: a response() makes wrk parse
   -- every answer for the script, a cost the timed runs do not pay
   function response(status, headers, body)
      answers = answers + 1
      if answers == K then
         wrk.thread:stop()
         -- wrk's main thread sleeps for -d whatever its threads do; a
         -- SIGINT ends the sleep (sent once this thread has gone, so
         -- that the main thread is the one to take it; $PPID is wrk)
         os.execute("(sleep 0.2; kill -INT $PPID) &")
      end
   end
elseif dist == "zipf" then
   function request()
      local r = math.random(K)
      if math.random() >= prob[r] then
         r = alias[r]
      end
      return reqs[r]
   end
else
   function request()
      return reqs[math.random(K)]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d "
      .. "errors=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      e.status, e.connect + e.read + e.write + e.timeout))
end

-- bench/http/rows.lua — the wrk script of bench/bench_http.sh: one request
-- generator per row, the same script (and so the same client cost) against
-- invcored and against the nginx yardstick.
--
--   wrk -s bench/http/rows.lua ... -- ROW
--   ROW: set     Shoplazza POST /openapi/2026-01/inventory_levels/set
--        adjust  Shopify   POST /admin/api/VERSION/inventory_levels/adjust.json
--        inv     Shoplazza GET  /openapi/2026-01/products/{id}/inventory
--
-- Every request names another item (or product) of the preloaded set, so
-- invcored does real engine work per request: a journaled write for set and
-- adjust, a product -> items -> levels walk for inv. The walk over the set
-- is a fixed stride (prime, so it visits every index when it does not divide
-- the set's size), starting at a different place per wrk thread.
--
-- Environment (bench_http.sh sets every one; the ids' digit counts are fixed
-- so every response of a row has the same length, the length nginx answers):
--   BENCH_HTTP_N          items per row (set / adjust), products (inv)
--   BENCH_HTTP_SET_BASE   first item id of the set row
--   BENCH_HTTP_ADJ_BASE   first item id of the adjust row
--   BENCH_HTTP_PROD_BASE  first product number of the inv row
--   BENCH_HTTP_LOC        the location id
--   BENCH_HTTP_TOKEN      the access token (--requirepass)
--   BENCH_HTTP_SHOPIFY    the Shopify API version in the adjust path
--
-- done() prints one machine-read line (the shell parses it, never wrk's own
-- text): requests, duration, p50/p99 in microseconds and every error class.
-- wrk counts a status >= 400 in errors.status; the shell fails the row when
-- any error count is not 0.

local STRIDE = 7919 -- prime: the walk visits every index when N % STRIDE ~= 0
local SET_STOCK_MIN = 100 -- set stocks stay within 100..999 (three digits)
local SET_STOCK_SPAN = 900

local function env_int(name)
  local v = tonumber(os.getenv(name) or "")
  assert(v and v >= 1, "bench/http/rows.lua: " .. name .. " must be a positive integer")
  return math.floor(v)
end

local function env_str(name)
  local v = os.getenv(name)
  assert(v and #v > 0, "bench/http/rows.lua: " .. name .. " is not set")
  return v
end

-- setup() runs in the main Lua state once per thread: hand each its number
-- (wrk copies it into the thread's own state as the global `tid`).
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local row, n, loc, token, gen
local idx, count = 0, 0

-- Product n's id, fixed width (as bench_http.sh preloads it).
local function product_id(k)
  return string.format("00000000-0000-4000-8000-%012d", k)
end

local generators = {
  set = function(base)
    local path = "/openapi/2026-01/inventory_levels/set"
    local headers = { ["Access-Token"] = token, ["Content-Type"] = "application/json" }
    return function()
      local stock = SET_STOCK_MIN + count % SET_STOCK_SPAN
      local body = '{"inventory_item_id":"' .. (base + idx) .. '","location_id":"' .. loc ..
                   '","stock":' .. stock .. '}'
      return wrk.format("POST", path, headers, body)
    end
  end,
  adjust = function(base)
    local path = "/admin/api/" .. env_str("BENCH_HTTP_SHOPIFY") .. "/inventory_levels/adjust.json"
    local headers = { ["X-Shopify-Access-Token"] = token, ["Content-Type"] = "application/json" }
    return function()
      -- -1 then +1 per item visit pair: the stock stays within one unit of
      -- its preloaded value, so the answer's length never changes.
      local delta = (count % 2 == 0) and -1 or 1
      local body = '{"location_id":' .. loc .. ',"inventory_item_id":' .. (base + idx) ..
                   ',"available_adjustment":' .. delta .. '}'
      return wrk.format("POST", path, headers, body)
    end
  end,
  inv = function(base)
    local headers = { ["Access-Token"] = token }
    return function()
      return wrk.format("GET", "/openapi/2026-01/products/" .. product_id(base + idx) ..
                        "/inventory", headers)
    end
  end,
}

local bases = { set = "BENCH_HTTP_SET_BASE", adjust = "BENCH_HTTP_ADJ_BASE",
                inv = "BENCH_HTTP_PROD_BASE" }

function init(args)
  row = args[1]
  assert(generators[row], "bench/http/rows.lua: row must be set, adjust or inv, not " ..
         tostring(row))
  n = env_int("BENCH_HTTP_N")
  loc = env_int("BENCH_HTTP_LOC")
  token = env_str("BENCH_HTTP_TOKEN")
  gen = generators[row](env_int(bases[row]))
  idx = ((tid or 0) * 104729) % n -- threads start far apart in the set
end

function request()
  local r = gen()
  -- the adjust pair (-1, +1) lands on one item, then the walk moves on
  if row ~= "adjust" or count % 2 == 1 then
    idx = (idx + STRIDE) % n
  end
  count = count + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKROW requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d " ..
    "status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end

-- benchreport.lua - done() helper shared by the wrk scripts of bench/:
-- prints one line "BENCHJSON {...}" that bench/common.py parses.
-- Found through LUA_PATH (bench/common.py sets it to bench/wrk/?.lua).
local M = {}

local function encode(v)
   if type(v) == "string" then
      return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
   elseif type(v) == "boolean" then
      return tostring(v)
   elseif type(v) == "number" then
      if v ~= v or v == math.huge or v == -math.huge then return "null" end
      return string.format("%.17g", v)
   end
   return "null"
end

function M.done(summary, latency, requests, extra)
   local e = summary.errors
   local secs = summary.duration / 1e6
   local t = {
      requests = summary.requests, duration_s = secs, rps = summary.requests / secs,
      bytes = summary.bytes, errors_status = e.status, errors_connect = e.connect,
      errors_read = e.read, errors_write = e.write, errors_timeout = e.timeout,
      lat_mean_us = latency.mean, lat_max_us = latency.max,
      lat_p50_us = latency:percentile(50), lat_p90_us = latency:percentile(90),
      lat_p99_us = latency:percentile(99),
   }
   for k, v in pairs(extra or {}) do t[k] = v end
   local parts = {}
   for k, v in pairs(t) do parts[#parts + 1] = encode(k) .. ":" .. encode(v) end
   io.write("BENCHJSON {" .. table.concat(parts, ",") .. "}\n")
end

-- monotonic seconds (LuaJIT ffi), comparable across wrk threads
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local tsbuf = ffi.new("bench_timespec")
function M.now()
   ffi.C.clock_gettime(1, tsbuf) -- CLOCK_MONOTONIC
   return tonumber(tsbuf.tv_sec) + tonumber(tsbuf.tv_nsec) * 1e-9
end

-- a copy of wrk.headers (the -H headers): wrk.format() does not merge them
-- into an explicit header table
function M.headers(more)
   local h = {}
   for k, v in pairs(wrk.headers) do h[k] = v end
   for k, v in pairs(more or {}) do h[k] = v end
   return h
end

return M

-- close.lua - PUT {} to <prefix><id> for the ids of a file, one id per
-- request; wrk thread k of n takes ids k+1, k+1+n, ... (each session is
-- closed once). Once a thread's ids run out it sends GET /tiny.txt instead
-- (counted in "exhausted"); the figure therefore comes from the script's
-- own counts: put_ok answers 204 between t_first (first PUT sent) and
-- t_last (last PUT answered), CLOCK_MONOTONIC seconds.
--   wrk -s close.lua URL -- IDS_FILE PATH_PREFIX NTHREADS
local report = require("benchreport")
local threads, counter = {}, 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   ids = {}
   for line in io.lines(args[1]) do ids[#ids + 1] = line end
   prefix = args[2]
   step = tonumber(args[3])
   i = tid + 1
   exhausted, put_ok, put_err, t_first, t_last = 0, 0, 0, 0, 0
   err_status, err_codes_s = {}, ""
   hdrs = report.headers({ ["Content-Type"] = "application/json" })
   filler = wrk.format("GET", "/tiny.txt")
   verify_call = (tid == 0) -- wrk's check call of request(): uses no id
end

function request()
   if verify_call then
      verify_call = false
      return filler
   end
   if i > #ids then
      exhausted = exhausted + 1
      return filler
   end
   local id = ids[i]
   i = i + step
   if t_first == 0 then t_first = report.now() end
   return wrk.format("PUT", prefix .. id, hdrs, "{}")
end

function response(status, headers, body)
   if status == 200 then return end -- a filler
   if status == 204 then
      put_ok = put_ok + 1
   else
      put_err = put_err + 1
      err_status[status] = (err_status[status] or 0) + 1
      err_codes_s = err_codes()
   end
   t_last = report.now()
end

-- "409:2 503:1" (thread:get can only return plain values)
function err_codes()
   local parts = {}
   for k, v in pairs(err_status) do parts[#parts + 1] = k .. ":" .. v end
   return table.concat(parts, " ")
end

function done(summary, latency, requests)
   local ex, ok, err, tf, tl, codes = 0, 0, 0, math.huge, 0, ""
   for _, t in ipairs(threads) do
      ex = ex + t:get("exhausted")
      ok = ok + t:get("put_ok")
      err = err + t:get("put_err")
      codes = codes .. " " .. t:get("err_codes_s")
      local a, b = t:get("t_first"), t:get("t_last")
      if a > 0 and a < tf then tf = a end
      if b > tl then tl = b end
   end
   report.done(summary, latency, requests, { exhausted = ex, put_ok = ok, put_err = err,
      t_first = tf, t_last = tl, put_span_s = tl - tf, err_codes = codes })
end

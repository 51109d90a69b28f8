-- upload.lua - uploads a fixed number of files, then stops.
--   wrk -s upload.lua URL -- TOTAL NTHREADS MARKER_DIR MODE PATH FIELDS_FILE SIZE PREFIX
-- MODE s3:  POST PATH, multipart/form-data: the fields of FIELDS_FILE
--           (name<TAB>value lines) then the part "file" (our upload target)
-- MODE dav: PUT PATH<name> with the bytes as body (mod_dav)
-- Each wrk thread uploads its share of TOTAL files of SIZE bytes named
-- PREFIX-<thread>-<n>.txt, then writes MARKER_DIR/done-<thread> and stops;
-- bench/common.py:wrk_batch() ends wrk (SIGINT) once every thread is done.
-- A connection whose thread has issued its share sends GET /tiny.txt
-- (answered 200, not counted) until the thread's last upload returns.
-- done() prints t_first (first upload sent) and t_last (last answer), both
-- CLOCK_MONOTONIC seconds, and the ok/failed counts.
local report = require("benchreport")
local threads, counter = {}, 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local total, nthreads = tonumber(args[1]), tonumber(args[2])
   marker, mode, path = args[3], args[4], args[5]
   local fields_file, size = args[6], tonumber(args[7])
   prefix = args[8]
   quota = math.floor(total / nthreads) + ((tid < total % nthreads) and 1 or 0)
   issued, ok, failed, finished, t_first, t_last = 0, 0, 0, 0, 0, 0
   -- deterministic printable bytes, different per thread
   math.randomseed(1234 + tid)
   local c = {}
   for j = 1, 256 do c[j] = string.char(math.random(33, 126)) end
   payload = string.rep(table.concat(c), math.ceil(size / 256)):sub(1, size)
   boundary = "----us-bench-" .. tid .. "-" .. math.random(1, 1e9)
   if mode == "s3" then
      local parts = {}
      for line in io.lines(fields_file) do
         local k, v = line:match("^([^\t]*)\t(.*)$")
         parts[#parts + 1] = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"" ..
            k .. "\"\r\n\r\n" .. v .. "\r\n"
      end
      head = table.concat(parts)
      tail = "\r\n--" .. boundary .. "--\r\n"
      hdrs = report.headers({ ["Content-Type"] = "multipart/form-data; boundary=" .. boundary })
   else
      hdrs = report.headers({ ["Content-Type"] = "application/octet-stream" })
   end
   filler = wrk.format("GET", "/tiny.txt")
   -- wrk calls request() of thread 0 once before the run to check it
   -- (script_verify_request): that call must not use up an upload
   verify_call = (tid == 0)
   if quota == 0 then finish() end
end

function finish()
   finished = 1
   t_last = report.now()
   local f = io.open(marker .. "/done-" .. tid, "w")
   f:write("done\n")
   f:close()
   wrk.thread:stop()
end

function request()
   if verify_call then
      verify_call = false
      return filler
   end
   if issued >= quota then return filler end
   issued = issued + 1
   if t_first == 0 then t_first = report.now() end
   local name = prefix .. "-" .. tid .. "-" .. issued .. ".txt"
   if mode == "s3" then
      return wrk.format("POST", path, hdrs, head .. "--" .. boundary ..
         "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" .. name ..
         "\"\r\nContent-Type: text/plain\r\n\r\n" .. payload .. tail)
   end
   return wrk.format("PUT", path .. name, hdrs, payload)
end

function response(status, headers, body)
   if status == 200 then return end -- a filler
   if status == 201 or status == 204 then
      ok = ok + 1
   else
      failed = failed + 1
      if failed <= 3 then io.stderr:write("upload failed: " .. status .. " " .. body .. "\n") end
   end
   if finished == 0 and ok + failed >= quota then finish() end
end

function done(summary, latency, requests)
   local tf, tl, nok, nfail, nfin = math.huge, 0, 0, 0, 0
   for _, t in ipairs(threads) do
      local a, b = t:get("t_first"), t:get("t_last")
      if a > 0 and a < tf then tf = a end
      if b > tl then tl = b end
      nok = nok + t:get("ok")
      nfail = nfail + t:get("failed")
      nfin = nfin + t:get("finished")
   end
   report.done(summary, latency, requests, { t_first = tf, t_last = tl, elapsed_s = tl - tf,
      ok = nok, failed = nfail, threads_finished = nfin })
end

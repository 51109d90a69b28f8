-- plain.lua - the URL as given (GET, -H headers); wrk's static fast path.
local report = require("benchreport")
function done(summary, latency, requests) report.done(summary, latency, requests) end

-- create.lua - POST {} to the URL (create session); static request.
local report = require("benchreport")
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests) report.done(summary, latency, requests) end

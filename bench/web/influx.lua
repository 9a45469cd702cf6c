-- wrk script for InfluxDB 1.x /query: POST the form body given as the first argument
-- after `--` (already URL-encoded: q=…&epoch=ms&db=…), as hostscope's client does.
local body = ""
function init(args)
    body = args[1]
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
function request()
    return wrk.format("POST", "/query", nil, body)
end

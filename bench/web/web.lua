-- wrk script for hostscope-web: GET the path given as the first argument after `--`,
-- with the bench API token.
local path = "/"
function init(args)
    path = args[1]
end
wrk.headers["Authorization"] = "Bearer bench-token-0123456789abcdef"
function request()
    return wrk.format("GET", path)
end

-- wrk: Tideline file writes, a 256-byte raw body to a new path per request.
--   POST /api/v1/sandboxvolumes/<volume>/files?path=/bench/<tag>/c<thread>/f<n>
--   Authorization: Bearer <team token>
-- Reads TIDELINE_TOKEN and TIDELINE_VOLUME besides what benches/wrk/common.lua reads.

local common = dofile(os.getenv("WRK_LIB"))
common.install()

local volume = os.getenv("TIDELINE_VOLUME")
local token = os.getenv("TIDELINE_TOKEN")
assert(volume and volume ~= "", "TIDELINE_VOLUME is not set")
assert(token and token ~= "", "TIDELINE_TOKEN is not set")
local n = 0

function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/octet-stream"
end

function request()
  n = n + 1
  local path = string.format("/api/v1/sandboxvolumes/%s/files?path=/bench/%s/c%d/f%d", volume, common.tag, id, n)
  return wrk.format(nil, path, nil, common.PREFIX .. common.suffix(id, n))
end

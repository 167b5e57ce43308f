-- wrk: etcd v3 puts through the gRPC gateway, a 256-byte value under a new key per request.
--   POST /v3/kv/put  {"key": base64("bench/<tag>/c<thread>/f<n>"), "value": base64(256 bytes)}
-- Run by benches/compare-etcd.sh (see benches/wrk/common.lua for the environment it reads).

local common = dofile(os.getenv("WRK_LIB"))
common.install()

local prefix_b64 = common.base64(common.PREFIX)
local n = 0

function init(args)
  wrk.method = "POST"
  wrk.path = "/v3/kv/put"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local key = string.format("bench/%s/c%d/f%d", common.tag, id, n)
  local body = '{"key":"' .. common.base64(key) .. '","value":"'
    .. prefix_b64 .. common.base64(common.suffix(id, n)) .. '"}'
  return wrk.format(nil, nil, nil, body)
end

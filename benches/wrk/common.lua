-- Shared by etcd-put.lua and tideline-write.lua (loaded with dofile from $WRK_LIB).
--
-- Environment (set by benches/lib/cluster.sh's wrk_run):
--   WRK_MEMBERS  host:port,host:port,…  thread k connects to member k (mod the count)
--   WRK_TAG      run label; every key/path of the run contains it, so no two runs collide
--
-- done() prints one machine-readable line:
--   RESULT requests=N duration_s=S rps=R p50_ms=A p99_ms=B non2xx=E socket_errors=F
-- requests counts every completed response (2xx or not); rps is requests per second.

local M = {}

-- The 256-byte value/body: 240 fixed bytes and a 16-byte unique suffix (thread, counter).
M.VALUE_BYTES = 256
M.PREFIX = string.rep("tideline-bench-", 16) -- 240 bytes, a multiple of 3 for base64
M.SUFFIX_BYTES = M.VALUE_BYTES - #M.PREFIX
assert(M.SUFFIX_BYTES == 16)

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1)
      .. (b and B64:sub(c3 + 1, c3 + 1) or "=") .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

-- The unique tail of request n of thread id: exactly SUFFIX_BYTES bytes.
function M.suffix(id, n)
  return string.format("t%02d-%012d", id % 100, n % 1000000000000)
end

function M.members()
  local list = {}
  for hp in string.gmatch(os.getenv("WRK_MEMBERS") or "", "[^,]+") do
    local host, port = hp:match("^(.+):(%d+)$")
    assert(host, "WRK_MEMBERS entry is not host:port: " .. hp)
    list[#list + 1] = { host = host, port = port }
  end
  assert(#list > 0, "WRK_MEMBERS is empty")
  return list
end

M.tag = os.getenv("WRK_TAG") or "run"

-- Installs setup/init/response/done as globals in the calling script's Lua state.
function M.install()
  local threads, members, next_id = {}, nil, 0

  -- Runs once per thread, in the main Lua state: thread k goes to member k (mod the count).
  function setup(thread)
    members = members or M.members()
    local m = members[next_id % #members + 1]
    thread.addr = wrk.lookup(m.host, m.port)[1]
    thread:set("id", next_id)
    thread:set("non2xx", 0)
    threads[#threads + 1] = thread
    next_id = next_id + 1
  end

  function response(status, headers, body)
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if non2xx == 1 then
        io.stderr:write(string.format("first non-2xx: %d %s\n", status, body or ""))
      end
    end
  end

  function done(summary, latency, requests)
    local non2xx_total = 0
    for _, t in ipairs(threads) do
      non2xx_total = non2xx_total + (t:get("non2xx") or 0)
    end
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
      "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      non2xx_total, e.connect + e.read + e.write + e.timeout))
  end
end

return M

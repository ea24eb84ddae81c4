// The Lua scripts of the Redis backend: each atomic operation of the port is one script, so it is one
// round trip and nothing can run between its read and its write. Values are stored as
// `<expiresAt>|<stamp>|<json>` (expiresAt empty: never; stamp empty: written by `set`), and expiry is
// decided by the caller's clock (ARGV[1] is always "now"), as on every other backend. A `PX` past the
// expiry lets Redis reclaim the memory of entries nobody reads any more.

// The envelope of a live entry (or nil): expiry, stamp, JSON.
const live = `
local function live(key, now)
  local cur = redis.call('GET', key)
  if not cur then return nil end
  local e, s, j = string.match(cur, '^(%d*)|([^|]*)|(.*)$')
  if e == nil then return nil end
  if e ~= '' and tonumber(e) < now then return nil end
  return s, j
end
local function put(key, value, px)
  if px == '' then redis.call('SET', key, value) else redis.call('SET', key, value, 'PX', px) end
end
`;

/** KEYS[1]; ARGV: now, envelope, px. 1 when stored. */
export const addScript = `${live}
if live(KEYS[1], tonumber(ARGV[1])) then return 0 end
put(KEYS[1], ARGV[2], ARGV[3])
return 1`;

/** KEYS[1]; ARGV: now. 1 when a live entry was removed. */
export const deleteScript = `${live}
local s = live(KEYS[1], tonumber(ARGV[1]))
redis.call('DEL', KEYS[1])
if s then return 1 end
return 0`;

/** KEYS[1]; ARGV: now, json. 1 when removed. */
export const deleteIfScript = `${live}
local s, j = live(KEYS[1], tonumber(ARGV[1]))
if not s or j ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

/** KEYS[1]; ARGV: now, by, expiresAt, px. The sum, or an error when the entry is not an integer. */
export const incrementScript = `${live}
local s, j = live(KEYS[1], tonumber(ARGV[1]))
local n = 0
if s then
  n = tonumber(j)
  if n == nil or n ~= math.floor(n) then return redis.error_reply('ERR not an integer') end
end
n = n + tonumber(ARGV[2])
local text = string.format('%d', n)
put(KEYS[1], ARGV[3] .. '||' .. text, ARGV[4])
return text`;

/** KEYS[1]; ARGV: now, "1" to expect absence or "0", expected stamp, envelope, px. 1 when stored. */
export const setIfStampScript = `${live}
local s = live(KEYS[1], tonumber(ARGV[1]))
if ARGV[2] == '1' then
  if s then return 0 end
elseif not s or s ~= ARGV[3] then
  return 0
end
put(KEYS[1], ARGV[4], ARGV[5])
return 1`;

/** KEYS[1] (a sorted set); ARGV: now, token, limit. The members taken, each now scored at the token. */
export const claimScript = `
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(items) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return items`;

/** KEYS[1]; ARGV: member, token. 1 when removed. */
export const completeScript = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1`;

/** KEYS[1]; ARGV: member, token, at. 1 when moved. */
export const retryScript = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1`;

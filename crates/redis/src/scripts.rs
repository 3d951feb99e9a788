//! The Lua scripts that make a publish one atomic step in Redis (6.2 or later).

/// KEYS: meta, stream, live, floors, lasts, publisher.
/// ARGV: pub/sub channel, (unused), publisher's number, events to keep, ms to keep
/// (0: no expiry), channel name, kind (`b` broadcast, `c` channel), app id, body.
///
/// Returns the event's position, or 0 when this publisher's number was applied before (a
/// resent batch). Fails with `NOMETA` while the namespace has no epoch (new, or Redis came
/// back empty): numbering from 1 again would give positions every hub takes for ones it
/// already applied, so the publisher first restores the counter (`ENSURE`) and resends. The
/// announcement is `<epoch> <position> <ms> <name len> <id len> <kind>\n` then the name, the
/// id and the body, so any byte may appear in each.
///
/// The floor of a stream (the highest position it no longer holds) moves when `MAXLEN` trims
/// it, and when the stream comes back after expiring (everything it had, up to its last
/// event, is gone); a stream seen for the first time has lost nothing.
///
/// The namespace stays as large as what is live and kept: `live` scores each channel by when
/// its stream expires (`+inf`: never), and every publish forgets up to 64 channels whose
/// stream has expired (their floor and last entries go too, and `expired` in meta keeps the
/// highest position any of them held, so a hub that was away meanwhile can tell it may have
/// missed something).
pub const PUBLISH: &str = r#"
local meta, stream, live, floors, lasts, publisher =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('HEXISTS', meta, 'epoch') == 0 then
  return redis.error_reply('NOMETA the namespace has no epoch yet')
end
local number = tonumber(ARGV[3])
local applied = tonumber(redis.call('GET', publisher) or '0')
if number <= applied then return 0 end
redis.call('SET', publisher, number, 'PX', 86400000)
local position = redis.call('HINCRBY', meta, 'seq', 1)
local epoch = redis.call('HGET', meta, 'epoch')
local keep = tonumber(ARGV[4])
local length = redis.call('XLEN', stream)
if length == 0 then
  redis.call('HSET', floors, stream, redis.call('HGET', lasts, stream) or 0)
elseif length >= keep then
  local trimmed = redis.call('XRANGE', stream, '-', '+', 'COUNT', length - keep + 1)
  local id = trimmed[#trimmed][1]
  redis.call('HSET', floors, stream, string.match(id, '^(%d+)'))
end
local time = redis.call('TIME')
local ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('XADD', stream, 'MAXLEN', keep, position .. '-0', 't', ms, 'a', ARGV[8], 'b', ARGV[9])
redis.call('HSET', lasts, stream, position)
local keep_ms = tonumber(ARGV[5])
if keep_ms > 0 then redis.call('PEXPIRE', stream, keep_ms) end
if ARGV[7] == 'c' then
  redis.call('ZADD', live, keep_ms > 0 and (ms + keep_ms) or '+inf', ARGV[6])
  local prefix = string.sub(stream, 1, #stream - #ARGV[6])
  local due = redis.call('ZRANGEBYSCORE', live, '-inf', ms, 'LIMIT', 0, 64)
  local expired = tonumber(redis.call('HGET', meta, 'expired') or '0')
  for _, name in ipairs(due) do
    local gone = prefix .. name
    if redis.call('EXISTS', gone) == 0 then
      expired = math.max(expired, tonumber(redis.call('HGET', lasts, gone) or '0'))
      redis.call('HDEL', floors, gone)
      redis.call('HDEL', lasts, gone)
      redis.call('ZREM', live, name)
    end
  end
  if #due > 0 then redis.call('HSET', meta, 'expired', expired) end
end
redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. position .. ' ' .. ms .. ' ' .. #ARGV[6] .. ' '
  .. #ARGV[8] .. ' ' .. ARGV[7] .. '\n' .. ARGV[6] .. ARGV[8] .. ARGV[9])
return position
"#;

/// KEYS: meta. ARGV: epoch to set if none, the highest position this hub applied.
///
/// Run by each hub when it (re)connects. If Redis lost its data (restarted without
/// persistence), the first hub back restores the epoch it knew and the counter never goes
/// below what any hub applied, so positions stay increasing and ids stay valid.
/// Returns `{epoch, last position}`.
pub const ENSURE: &str = r#"
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local position = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if position < tonumber(ARGV[2]) then
  position = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'seq', position)
end
return {redis.call('HGET', KEYS[1], 'epoch'), position}
"#;

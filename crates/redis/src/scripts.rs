//! The Lua scripts that make a publish one atomic step in Redis (6.2 or later).

/// KEYS: meta, stream, live, floors, lasts, publisher.
/// ARGV: pub/sub channel, the number of the event before this one in its batch (0: the first
/// of its batch), publisher's number, events to keep, ms to keep (0: no expiry), channel name,
/// kind (`b` broadcast, `c` channel), app id, body, trace context ('' for none).
///
/// Returns the event's position, or 0 when this publisher's number was applied before (a
/// resent batch). Fails with `NOMETA` while the namespace has no epoch (new, or Redis came
/// back empty): numbering from 1 again would give positions every hub takes for ones it
/// already applied, so the publisher first restores the counter (`ENSURE`) and resends. The
/// announcement is `<epoch> <position> <ms> <name len> <id len> <kind>\n` then the name, the
/// id and the body, so any byte may appear in each; an event with a trace context has
/// ` <trace len>` after the kind and the context between the id and the body (a receiver
/// that does not know the field reads such an event from the stream instead). The stream
/// entry keeps the context as field `c`.
///
/// A failed publish writes nothing. Redis does not roll a script back when one of its commands
/// fails, so a write made before the failure would stay: a counter moved for an event never
/// stored, or this publisher's number recorded, after which the resent event would be taken for
/// applied and dropped. So everything that can fail is tried before the first write: each key
/// written is first read by a command of its type (a key holding another type fails with
/// `WRONGTYPE`, naming the key), every value used is checked (`NOTAPPLIED`), and every write is
/// checked against the user's ACL (`NOPERM`, naming the command; `redis.acl_check_cmd`, Redis 7
/// or later: on 6.2 only a denied `XADD`, the first write, is sure to leave nothing). Then `XADD`
/// writes first and this publisher's number last. And an event whose predecessor in its batch
/// was not applied fails (`NOTNEXT`) rather than overtake it: Redis runs a batch's calls one by
/// one, and a later event applied after a refused one would both change the order and record a
/// number past the refused one's, so that its resend would look applied.
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
local channel, kind = ARGV[6], ARGV[7]
-- Reads, through pcall: the first that fails is what the script answers.
local failed
local function read(command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    failed = failed or (reply.err .. ' (' .. command .. ' ' .. key .. '; nothing was written)')
    return nil
  end
  return reply
end
local function refuse(why)
  return redis.error_reply('NOTAPPLIED ' .. why .. ' (nothing was written)')
end
local namespace = read('HMGET', meta, 'epoch', 'seq', 'expired')
local applied = read('GET', publisher)
if failed then return redis.error_reply(failed) end
local epoch = namespace[1]
if not epoch then
  return redis.error_reply('NOMETA the namespace has no epoch yet')
end
local number = tonumber(ARGV[3])
applied = tonumber(applied or '0')
if not applied then return refuse(publisher .. ' holds no number') end
if number <= applied then return 0 end
if applied < tonumber(ARGV[2]) then
  return redis.error_reply('NOTNEXT event ' .. number .. ' waits for event ' .. ARGV[2]
    .. ', which Redis has not applied (nothing was written)')
end
local position = tonumber(namespace[2] or '0')
if not position then return refuse(meta .. ' seq is not a number') end
position = position + 1
local expired = tonumber(namespace[3] or '0')
if not expired then return refuse(meta .. ' expired is not a number') end
local keep = tonumber(ARGV[4])
local keep_ms = tonumber(ARGV[5])
local length = read('XLEN', stream)
local last = read('HGET', lasts, stream)
local time = redis.call('TIME')
local ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = {}
if kind == 'c' then due = read('ZRANGEBYSCORE', live, '-inf', ms, 'LIMIT', 0, 64) end
if failed then return redis.error_reply(failed) end
local floor
if length == 0 then
  floor = last or 0
elseif length >= keep then
  local trimmed = read('XRANGE', stream, '-', '+', 'COUNT', length - keep + 1)
  if failed then return redis.error_reply(failed) end
  floor = string.match(trimmed[#trimmed][1], '^(%d+)')
end
-- Channels whose stream expired, to forget (this one is published to, so it stays).
local prefix = string.sub(stream, 1, #stream - #channel)
local forget = {}
for _, name in ipairs(due) do
  local gone = prefix .. name
  if name ~= channel and read('EXISTS', gone) == 0 then
    forget[#forget + 1] = name
    local held = tonumber(read('HGET', lasts, gone) or '0')
    if not held then return refuse(lasts .. ' ' .. gone .. ' is not a number') end
    expired = math.max(expired, held)
  end
end
if floor or #forget > 0 then read('HEXISTS', floors, stream) end
if failed then return redis.error_reply(failed) end
-- Redis 7 and later tell whether this user may run each write (only the command and its keys
-- or channel count, so each is asked with its shortest valid form).
local id = position .. '-0'
local allowed = redis.acl_check_cmd
if allowed then
  local function check(command, key, ...)
    if not failed and not allowed(command, key, ...) then
      failed = 'NOPERM this user may not run ' .. command .. ' on ' .. key
        .. ' (nothing was written)'
    end
  end
  check('XADD', stream, id, 't', '')
  check('HSET', meta, 'seq', '')
  check('HSET', lasts, stream, '')
  if floor then check('HSET', floors, stream, '') end
  if keep_ms > 0 then check('PEXPIRE', stream, 1) end
  if kind == 'c' then check('ZADD', live, 0, channel) end
  if #forget > 0 then
    check('HDEL', floors, prefix .. forget[1])
    check('HDEL', lasts, prefix .. forget[1])
    check('ZREM', live, forget[1])
  end
  check('PUBLISH', ARGV[1], '')
  check('SET', publisher, '')
  if failed then return redis.error_reply(failed) end
end
local trace = ARGV[10] or ''
if trace == '' then
  redis.call('XADD', stream, 'MAXLEN', keep, id, 't', ms, 'a', ARGV[8], 'b', ARGV[9])
else
  redis.call('XADD', stream, 'MAXLEN', keep, id, 't', ms, 'a', ARGV[8], 'b', ARGV[9], 'c', trace)
end
redis.call('HSET', meta, 'seq', position)
if floor then redis.call('HSET', floors, stream, floor) end
redis.call('HSET', lasts, stream, position)
if keep_ms > 0 then redis.call('PEXPIRE', stream, keep_ms) end
if kind == 'c' then
  redis.call('ZADD', live, keep_ms > 0 and (ms + keep_ms) or '+inf', channel)
  for _, name in ipairs(forget) do
    redis.call('HDEL', floors, prefix .. name)
    redis.call('HDEL', lasts, prefix .. name)
    redis.call('ZREM', live, name)
  end
  if #due > 0 then redis.call('HSET', meta, 'expired', expired) end
end
if trace == '' then
  redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. position .. ' ' .. ms .. ' ' .. #channel .. ' '
    .. #ARGV[8] .. ' ' .. kind .. '\n' .. channel .. ARGV[8] .. ARGV[9])
else
  redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. position .. ' ' .. ms .. ' ' .. #channel .. ' '
    .. #ARGV[8] .. ' ' .. kind .. ' ' .. #trace .. '\n' .. channel .. ARGV[8] .. trace .. ARGV[9])
end
redis.call('SET', publisher, number, 'PX', 86400000)
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

#[cfg(test)]
mod tests {
    use super::PUBLISH;

    #[test]
    fn the_publish_script_writes_nothing_until_everything_that_can_fail_passed() {
        let first_write = PUBLISH.find("redis.call('XADD'").expect("the XADD");
        for fails in ["read(", "check(", "refuse(", "error_reply("] {
            let last = PUBLISH.rfind(fails).expect(fails);
            assert!(last < first_write, "{fails} after the first write");
        }
        let marker = PUBLISH
            .find("redis.call('SET', publisher")
            .expect("the marker");
        for (at, _) in PUBLISH.match_indices("redis.call(") {
            let call = &PUBLISH[at..];
            assert!(
                at >= first_write || call.starts_with("redis.call('TIME')"),
                "a redis.call before the first write: {}",
                &call[..40]
            );
            assert!(at <= marker, "a write after the marker: {}", &call[..40]);
        }
    }
}

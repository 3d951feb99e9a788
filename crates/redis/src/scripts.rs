//! The Lua scripts that make a publish one atomic step in Redis (6.2 or later).

/// Publishes a run of events of one channel (or of broadcasts), in order, as one atomic step.
/// KEYS: meta, stream, live, floors, lasts, publisher.
/// ARGV: pub/sub channel, the number of the event before the run in its batch (0: the run is
/// the first of its batch), events to keep, ms to keep (0: no expiry), channel name, kind (`b`
/// broadcast, `c` channel), then for each event: publisher's number, app id, body, trace
/// context ('' for none).
///
/// What a run shares is done once for it: the reads and checks before, and the bookkeeping
/// writes after (the counter, the stream's last position, floor and expiry, this publisher's
/// number); each event adds only its stream entry and its announcement. A script call costs
/// Redis a few microseconds for each command it runs: one run of 64 events takes about a
/// quarter of the CPU that 64 calls of one event each took.
///
/// Returns the last event's position, or 0 when this publisher applied every event of the run
/// before (a resent batch); events at the run's front it applied before are skipped. Fails
/// with `NOMETA` while the namespace has no epoch (new, or Redis came back empty): numbering
/// from 1 again would give positions every hub takes for ones it already applied, so the
/// publisher first restores the counter (`ENSURE`) and resends. The
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
/// one, and a later run applied after a refused one would both change the order and record a
/// number past the refused one's, so that its resend would look applied.
///
/// The floor of a stream (the highest position it no longer holds) moves when `MAXLEN` trims
/// it, and when the stream comes back after expiring (everything it had, up to its last
/// event, is gone); a stream seen for the first time has lost nothing.
///
/// The namespace stays as large as what is live and kept: `live` scores each channel by when
/// its stream expires (`+inf`: never), and each event published forgets up to 64 channels
/// whose stream has expired, at most 4,096 in one call so that its work stays bounded. Their
/// floor and last entries go too, and `expired` in meta keeps the highest position any of
/// them held, so a hub that was away meanwhile can tell it may have missed something.
pub const PUBLISH: &str = r#"
local meta, stream, live, floors, lasts, publisher =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local channel, kind = ARGV[5], ARGV[6]
-- Each event of the run: its publisher's number, app id, body and trace context.
local FIRST, PER = 7, 4
local count = (#ARGV - FIRST + 1) / PER
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
if count < 1 or count ~= math.floor(count) then return refuse('the run has no events') end
local namespace = read('HMGET', meta, 'epoch', 'seq', 'expired')
local applied = read('GET', publisher)
if failed then return redis.error_reply(failed) end
local epoch = namespace[1]
if not epoch then
  return redis.error_reply('NOMETA the namespace has no epoch yet')
end
applied = tonumber(applied or '0')
if not applied then return refuse(publisher .. ' holds no number') end
-- A resent run: what this publisher applied before is skipped.
local from = 0
while from < count do
  local number = tonumber(ARGV[FIRST + from * PER])
  if not number then return refuse('event ' .. ARGV[FIRST + from * PER] .. ' has no number') end
  if number > applied then break end
  from = from + 1
end
if from == count then return 0 end
local previous = tonumber(ARGV[2])
if from > 0 then previous = tonumber(ARGV[FIRST + (from - 1) * PER]) end
if applied < previous then
  return redis.error_reply('NOTNEXT event ' .. ARGV[FIRST + from * PER] .. ' waits for event '
    .. previous .. ', which Redis has not applied (nothing was written)')
end
local adding = count - from
local position = tonumber(namespace[2] or '0')
if not position then return refuse(meta .. ' seq is not a number') end
local expired = tonumber(namespace[3] or '0')
if not expired then return refuse(meta .. ' expired is not a number') end
local keep = tonumber(ARGV[3])
local keep_ms = tonumber(ARGV[4])
local length = read('XLEN', stream)
local last = read('HGET', lasts, stream)
local time = redis.call('TIME')
local ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = {}
if kind == 'c' then due = read('ZRANGEBYSCORE', live, '-inf', ms, 'LIMIT', 0, math.min(64 * adding, 4096)) end
if failed then return redis.error_reply(failed) end
-- The floor after the run: the last entry MAXLEN trims, of those there now or of the run's
-- own (a run longer than the stream keeps); a stream that was empty lost what it had up to
-- its last event.
local floor
local trimmed = length + adding - keep
if trimmed > length then
  floor = position + (trimmed - length)
elseif trimmed > 0 then
  local gone = read('XRANGE', stream, '-', '+', 'COUNT', trimmed)
  if failed then return redis.error_reply(failed) end
  floor = string.match(gone[#gone][1], '^(%d+)')
elseif length == 0 then
  floor = last or 0
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
local allowed = redis.acl_check_cmd
if allowed then
  local function check(command, key, ...)
    if not failed and not allowed(command, key, ...) then
      failed = 'NOPERM this user may not run ' .. command .. ' on ' .. key
        .. ' (nothing was written)'
    end
  end
  check('XADD', stream, (position + 1) .. '-0', 't', '')
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
for i = FIRST + from * PER, #ARGV, PER do
  position = position + 1
  local app_id, body, trace = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  -- A trace context adds its length after the kind and itself before the body.
  local traced = ''
  if trace == '' then
    redis.call('XADD', stream, 'MAXLEN', keep, position .. '-0', 't', ms, 'a', app_id, 'b', body)
  else
    redis.call('XADD', stream, 'MAXLEN', keep, position .. '-0', 't', ms, 'a', app_id, 'b', body, 'c', trace)
    traced = ' ' .. #trace
  end
  redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. position .. ' ' .. ms .. ' ' .. #channel .. ' '
    .. #app_id .. ' ' .. kind .. traced .. '\n' .. channel .. app_id .. trace .. body)
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
redis.call('SET', publisher, ARGV[#ARGV - PER + 1], 'PX', 86400000)
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

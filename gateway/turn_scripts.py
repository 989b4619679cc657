"""The Lua scripts of one message's way (``gateway/pipeline.py``): each is one round trip and touches one Redis
Cluster slot (every key it names carries the sender's hash tag)."""

# Accept in one round trip: dedupe, take a ticket, find or start the conversation,
# read the bot's state, the account binding and any answer that arrived late for this sender.
# KEYS: dedupe key, sender hash, binding, late list. ARGV: pending ttl, idle timeout, fresh conversation id,
# this process's instance id, the sender's rate (messages a second; 0 = no limit), its burst. The dedupe key holds
# "pending:<instance>:<ticket>" while the turn runs: a retry whose first handling died with its process takes the
# turn over (see ``_duplicate``). The rate is a token bucket in the sender's hash (``tok``: the tokens left at the
# last accepted message, ``last``): a message takes a token; tokens come back at the rate, up to the burst.
# Returns {1, ticket, served, conversation, new, language, bot state, bound phone, late answers,
# the chat a human holds (handoff)},
# for a duplicate {0, stored replies, conversation} (answered whatever the rate),
# or, for a sender over its rate, {2, seconds until a token is back} (nothing stored: the message is not accepted).
ACCEPT = """
local seen = redis.call('GET', KEYS[1])
if seen then
  return {0, seen, redis.call('HGET', KEYS[2], 'conv') or ''}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[2], 'served', 'conv', 'last', 'lang', 'bot', 'human', 'renewed', 'tok')
local rate, tokens = tonumber(ARGV[5]), nil
if rate > 0 then  -- the tokens left at the last accepted message ('last'), and those come back since
  local burst = tonumber(ARGV[6])
  tokens = burst
  if state[8] then tokens = math.min(burst, tonumber(state[8]) + (now - tonumber(state[3])) * rate) end
  if tokens < 1 then return {2, tostring((1 - tokens) / rate)} end
end
local ticket = redis.call('HINCRBY', KEYS[2], 'ticket', 1)
redis.call('SET', KEYS[1], 'pending:' .. ARGV[4] .. ':' .. ticket, 'EX', ARGV[1])
local conv, new, stamp = state[2], 0, tostring(now)
local set = {'o' .. ticket, ARGV[4], 'last', stamp}
if tokens then set[5], set[6] = 'tok', tostring(tokens - 1) end
if not conv or now - tonumber(state[3] or '0') > tonumber(ARGV[2]) then
  conv, new = ARGV[3], 1
  local n = #set
  set[n + 1], set[n + 2], set[n + 3], set[n + 4] = 'conv', conv, 'started', stamp
end
-- the hash lives a day past the idle timeout after the last message; its TTL is renewed at most once a minute
-- (each write also costs the append-only file), so it may expire up to a minute early
local renew = now - tonumber(state[7] or '0') > 60
if renew then set[#set + 1] = 'renewed'; set[#set + 1] = stamp end
redis.call('HSET', KEYS[2], unpack(set))
if renew then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]) + 86400) end
local late = {}
if redis.call('EXISTS', KEYS[4]) == 1 then
  late = redis.call('LRANGE', KEYS[4], 0, -1)
  redis.call('DEL', KEYS[4])
end
return {1, ticket, tonumber(state[1] or '0'), conv, new, state[4] or '', state[5] or '',
        redis.call('GET', KEYS[3]) or '', late, state[6] or ''}
"""

# Let go of a turn — a retry taking over one whose process died, or a turn that failed releasing its own —
# only while the dedupe key still holds that turn's mark (a finish that landed keeps its replies): release
# it and mark its ticket served (so later messages of the sender need not wait for it).
# KEYS: dedupe key, sender hash. ARGV: the dead turn's mark, its ticket.
TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], 'o' .. ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[2], 'served') or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[2], 'served', ARGV[2]) end
return 1
"""

# Mark a ticket served unless a later one already was (a skipped, slow holder may finish late).
# KEYS: sender hash. ARGV: ticket.
SERVE = """
redis.call('HDEL', KEYS[1], 'o' .. ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'served') or '0')
if tonumber(ARGV[1]) > cur then redis.call('HSET', KEYS[1], 'served', ARGV[1]) end
return cur
"""

# Finish a turn in one round trip: store the replies for duplicates, the language and the bot's
# state, mark the ticket served, append the log entries. KEYS: dedupe key, sender hash,
# conversation log (one slot: the sender's hash tag). ARGV: stored replies, ticket, dedupe ttl,
# reply language, bot state ('' = unchanged), bot state rev, log entries (JSON) …
FINISH = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('HDEL', KEYS[2], 'o' .. ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[2], 'served') or '0')
local set = {'lang', ARGV[4]}
if ARGV[5] ~= '' then set[3], set[4], set[5], set[6] = 'bot', ARGV[5], 'botrev', ARGV[6] end
if tonumber(ARGV[2]) > cur then set[#set + 1] = 'served'; set[#set + 1] = ARGV[2] end
redis.call('HSET', KEYS[2], unpack(set))
for i = 7, #ARGV do redis.call('XADD', KEYS[3], '*', 'e', ARGV[i]) end
return cur
"""

# An answer that arrived after the deadline: its bot state lands only if nothing changed the
# state since (rev); it is kept for the next turn when the channel cannot push.
# KEYS: sender hash, conversation log, late list. ARGV: expected rev, bot state, new rev,
# replies to keep ('' = pushed), log entries …
LATE = """
local applied = 0
if tonumber(redis.call('HGET', KEYS[1], 'botrev') or '0') == tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'bot', ARGV[2], 'botrev', ARGV[3])
  applied = 1
end
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[3], 86400)
end
for i = 5, #ARGV do redis.call('XADD', KEYS[2], '*', 'e', ARGV[i]) end
return applied
"""

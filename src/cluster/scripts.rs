//! The Lua scripts that keep names unique across nodes. Each runs atomically
//! in Redis, so a claim and its check cannot interleave with another node's.
//!
//! Keys (prefix `P`): `P:names`, a hash from `NAMESPACE\nNAME` to the node
//! holding it; `P:node:NODE:names`, the set of fields a node holds (so a
//! node's names can be dropped without scanning everyone's); `P:alive:NODE`,
//! which the node refreshes every heartbeat with an expiry of one node
//! timeout. A name whose holder's `alive` key expired is free.

/// KEYS: names hash, own set. ARGV: field, node, alive-key prefix, node-set
/// prefix. 1 when the node holds the name afterwards, 0 when a live node does.
pub const CLAIM: &str = r"
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] then
  if redis.call('EXISTS', ARGV[3] .. owner) == 1 then return 0 end
  redis.call('SREM', ARGV[4] .. owner .. ':names', ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
";

/// KEYS: names hash, own set. ARGV: field, node. Lets go of a name if the
/// node still holds it.
pub const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
";

/// KEYS: names hash, the node's set, the node's alive key. ARGV: node,
/// `dead` or `self`. Drops every name the node holds: a node's own at start
/// and after a reconnect (before it claims its users' names again), a dead
/// node's when another node notices, unless it came back meanwhile.
pub const PURGE: &str = r"
if ARGV[2] == 'dead' and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local fields = redis.call('SMEMBERS', KEYS[2])
for _, field in ipairs(fields) do
  if redis.call('HGET', KEYS[1], field) == ARGV[1] then redis.call('HDEL', KEYS[1], field) end
end
redis.call('DEL', KEYS[2])
return #fields
";

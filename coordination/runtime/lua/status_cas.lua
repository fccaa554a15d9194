-- Compare-and-set a record's status (sweep records and todo checkpoints).
-- KEYS[1] = hash
-- ARGV[1] = new status (raw), ARGV[2] = JSON list of allowed current statuses
-- or "*" for any, ARGV[3] = expected token (raw) or "" for no check,
-- ARGV[4..] = field, JSON value pairs written along with the status.
-- Returns 1 if written, 0 if the record is missing or in another state.
--
-- Race closed: two writers (a worker finishing, a cancel, the supervisor)
-- reading the status and then writing would let the later one overwrite a
-- transition it never saw; here only one transition from a state wins.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local status = jget(KEYS[1], 'status')
if ARGV[2] ~= '*' and not in_list(status, ARGV[2]) then return 0 end
if ARGV[3] ~= '' and jget(KEYS[1], 'token') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'status', jstr(ARGV[1]))
hset_from(KEYS[1], 4)
return 1

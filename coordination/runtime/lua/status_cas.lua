-- Compare-and-set a sweep record's status.
-- KEYS[1] = sweep hash
-- ARGV[1] = new status (raw), ARGV[2] = JSON list of allowed current statuses
-- or "*" for any, ARGV[3..] = field, JSON value pairs written along with the status.
-- Returns 1 if written, 0 if the record is missing or in another state.
--
-- Race closed: two writers (a worker finishing, a cancel, the supervisor)
-- reading the status and then writing would let the later one overwrite a
-- transition it never saw; here only one transition from a state wins.
local status = jget(KEYS[1], 'status')
if status == nil then return 0 end
if ARGV[2] ~= '*' and not in_list(status, ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', jstr(ARGV[1]))
hset_from(KEYS[1], 3)
return 1

-- The lock that serializes every rollup writer.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The advisory lock every rollup writer holds until commit: rollup writes are serialized.
create function analytics.rollup_lock_key()
returns bigint
language sql
immutable
parallel safe
return 7266150348271853105;

revoke all on function analytics.rollup_lock_key() from public;

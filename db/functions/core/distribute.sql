-- The distribution step of distributed mode (Citus, docs/citus.md). Migrate calls it after the
-- migrations and the function files, only where the citus extension is installed; it is
-- idempotent, so tables that exist later (new migrations) are placed on the next migrate.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).
--
-- Placement:
-- - distributed by event_id, co-located (the same shard holds an id's event and its dedupe
--   guard, so the dedupe insert and the events insert run on the shards):
--   core.events (its monthly partitions follow), core.event_ids
-- - everything else stays a plain table on the coordinator: the ledger (ingest.files), the
--   HTTP idempotency records, the deferred-analytics queue, the dead letter and metrics
--   (quality.*: small, written once per batch, and replay updates them in place), the
--   exchange rates and settings, and the analytics rollups (small, hot, read by the analyst
--   views; as reference tables they would break views that join them, and every rollup
--   update would be a 2-phase write to all nodes).
create function core.distribute()
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_done text[] := '{}';
begin
    if not exists (select from pg_extension where extname = 'citus') then
        raise exception 'core.distribute() needs the citus extension'
            using hint = 'on a single node there is nothing to distribute: skip this step';
    end if;
    -- one transaction creates reference and distributed tables: no parallel shard work
    perform set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- the tables the validation reads, as reference tables (a copy on every node), so that a
    -- large file's chunks are checked on the workers (ingest.check_shard, chunks.sql)
    if not exists (
        select from pg_catalog.pg_dist_partition
        where logicalrelid = 'ingest.schema_versions'::regclass
    ) then
        perform pg_catalog.create_reference_table('ingest.schema_versions');
        v_done := v_done || 'ingest.schema_versions (reference)'::text;
    end if;
    if not exists (
        select from pg_catalog.pg_dist_partition where logicalrelid = 'core.extra_pii_keys'::regclass
    ) then
        perform pg_catalog.create_reference_table('core.extra_pii_keys');
        v_done := v_done || 'core.extra_pii_keys (reference)'::text;
    end if;
    if not exists (
        select from pg_catalog.pg_dist_partition where logicalrelid = 'core.events'::regclass
    ) then
        perform pg_catalog.create_distributed_table('core.events', 'event_id');
        v_done := v_done || 'core.events'::text;
    end if;
    if not exists (
        select from pg_catalog.pg_dist_partition where logicalrelid = 'core.event_ids'::regclass
    ) then
        perform pg_catalog.create_distributed_table(
            'core.event_ids', 'event_id', colocate_with => 'core.events'
        );
        v_done := v_done || 'core.event_ids'::text;
    end if;
    -- and the functions of the check on every worker (migrate re-creates them each time), and
    -- core.visible_extra, which views of the events call per row (analytics.event_extra, the
    -- lake's silver and bronze views): those calls run on the workers
    perform pg_catalog.create_distributed_function(p.oid::regprocedure)
    from pg_catalog.pg_proc as p
    where (p.pronamespace = 'ingest'::regnamespace
        and p.proname in ('check_shard', 'check_stage', 'domain', 'upgrade_stage',
            'upgrade_expression', 'staged_columns', 'pipeline_columns', 'protect_extra',
            'drop_temp_stage'))
        or (p.pronamespace = 'core'::regnamespace and p.proname = 'visible_extra');
    return case when cardinality(v_done) = 0 then 'already distributed'
        else 'distributed ' || array_to_string(v_done, ', ') end;
end
$$;

revoke all on function core.distribute() from public;

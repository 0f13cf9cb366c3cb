-- Schema drift figures for the HTTP collector's /metrics, callable by pipeline_analyst (which
-- cannot read quality.* or ingest.* directly). See docs/schema-registry.md.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Batches by schema version, batches that carried each unknown column (the 50 most frequent),
-- and open schema alerts by kind (schema_mismatch, deprecated_schema).
create function analytics.collector_schema()
returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select jsonb_build_object(
        'versions', (
            select coalesce(jsonb_object_agg(v.version::text, coalesce(b.n, 0)), '{}')
            from ingest.schema_versions as v
            left join (
                select schema_version, count(*) as n
                from quality.batch_metrics
                where schema_version is not null
                group by schema_version
            ) as b on b.schema_version = v.version
        ),
        'unknown_columns', (
            select coalesce(jsonb_object_agg(u.col, u.n), '{}')
            from (
                select c as col, count(*) as n
                from quality.batch_metrics as m, unnest(m.unknown_columns) as c
                group by c
                order by count(*) desc, c
                limit 50
            ) as u
        ),
        'alerts', (
            select jsonb_build_object(
                'schema_mismatch', count(*) filter (where a.kind = 'schema_mismatch'),
                'deprecated_schema', count(*) filter (where a.kind = 'deprecated_schema')
            )
            from quality.alerts as a
            where a.resolved_at is null
        )
    );
end;

revoke all on function analytics.collector_schema() from public;
grant execute on function analytics.collector_schema() to pipeline_analyst;

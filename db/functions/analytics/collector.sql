-- Read-only figures for the HTTP collector's /health, /metrics and dashboard, callable by
-- pipeline_analyst (which cannot read quality.* or ingest.* directly).
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Pipeline totals for /health and /metrics: batches, rows by outcome, the last batch, files
-- by ledger status.
create function analytics.collector_status()
returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select jsonb_build_object(
        'batches', t.batches, 'rows', t.rows, 'valid', t.valid, 'invalid', t.invalid,
        'duplicates', t.duplicates, 'late', t.late,
        'last_batch', (
            select jsonb_build_object(
                'batch_id', m.batch_id, 'source_kind', m.source_kind,
                'finished_at', m.finished_at, 'rows', m.rows,
                'validity_rate', m.validity_rate,
                'age_seconds', round(extract(epoch from now() - m.finished_at)::numeric, 3)
            )
            from quality.batch_metrics as m
            order by m.finished_at desc, m.batch_id desc
            limit 1
        ),
        'files', (
            select coalesce(jsonb_object_agg(f.status, f.n), '{}')
            from (select status, count(*) as n from ingest.files group by status) as f
        ),
        -- HTTP batches waiting for the analytics rollups (HTTP_ANALYTICS=deferred): 0 when none
        'analytics_queue_age_seconds', (
            select coalesce(round(extract(epoch from now() - min(d.queued_at))::numeric, 3), 0)
            from ingest.deferred_batches as d
        )
    )
    from (
        select count(*) as batches, coalesce(sum(rows), 0) as rows,
            coalesce(sum(valid), 0) as valid, coalesce(sum(invalid), 0) as invalid,
            coalesce(sum(duplicates), 0) as duplicates, coalesce(sum(late), 0) as late
        from quality.batch_metrics
    ) as t;
end;

-- The last p_limit batches (newest last) for the validity chart.
create function analytics.collector_batches(p_limit int)
returns table (
    batch_id bigint, source_kind text, finished_at timestamptz, rows bigint, valid bigint,
    invalid bigint, duplicates bigint, validity_rate numeric
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select b.batch_id, b.source_kind, b.finished_at, b.rows, b.valid, b.invalid, b.duplicates,
        b.validity_rate
    from (
        select m.batch_id, m.source_kind, m.finished_at, m.rows, m.valid, m.invalid,
            m.duplicates, m.validity_rate
        from quality.batch_metrics as m
        order by m.finished_at desc, m.batch_id desc
        limit least(greatest(p_limit, 0), 1000)
    ) as b
    order by b.finished_at, b.batch_id;
end;

-- Dead-letter reason counts of the batches finished in the last p_hours (counts only, from
-- quality.batch_metrics.reason_counts: no dead-letter row leaves the database).
create function analytics.collector_reasons(p_hours int)
returns table (reason text, rows bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select r.key, sum(r.value::bigint)::bigint
    from quality.batch_metrics as m, jsonb_each_text(m.reason_counts) as r
    where m.finished_at >= now() - make_interval(hours => p_hours)
    group by r.key
    order by 2 desc, 1;
end;

-- Stored events per minute and type whose event_time lies in the last p_minutes (at most a
-- day, so only the newest partitions are read).
create function analytics.collector_events_per_minute(p_minutes int)
returns table (minute timestamptz, event_type text, events bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select date_trunc('minute', e.event_time), e.event_type, count(*)
    from core.events as e
    where e.event_time >= date_trunc('minute', now())
            - make_interval(mins => least(greatest(p_minutes, 1), 1440) - 1)
        and e.event_time < now() + interval '1 hour'
    group by 1, 2
    order by 1, 2;
end;

revoke all on function analytics.collector_status() from public;
revoke all on function analytics.collector_batches(int) from public;
revoke all on function analytics.collector_reasons(int) from public;
revoke all on function analytics.collector_events_per_minute(int) from public;
grant execute on function analytics.collector_status() to pipeline_analyst;
grant execute on function analytics.collector_batches(int) to pipeline_analyst;
grant execute on function analytics.collector_reasons(int) to pipeline_analyst;
grant execute on function analytics.collector_events_per_minute(int) to pipeline_analyst;

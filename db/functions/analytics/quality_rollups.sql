-- The data-quality rollups (per hour of ingestion, per reason code).
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Adds one batch's metrics row to the data-quality rollups.
create function analytics.apply_quality(p_batch_id bigint)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_m quality.batch_metrics;
    v_hour timestamptz;
begin
    select * into v_m from quality.batch_metrics where batch_id = p_batch_id;
    if not found then
        return false;
    end if;
    v_hour := date_trunc('hour', v_m.finished_at, 'UTC');

    insert into analytics.rollup_quality_hourly as q (
        hour, batches, files, rows, valid, invalid, duplicates, late
    ) values (
        v_hour, 1, (v_m.source_kind = 'file')::int, v_m.rows, v_m.valid, v_m.invalid,
        v_m.duplicates, v_m.late
    )
    on conflict (hour) do update
    set batches = q.batches + excluded.batches,
        files = q.files + excluded.files,
        rows = q.rows + excluded.rows,
        valid = q.valid + excluded.valid,
        invalid = q.invalid + excluded.invalid,
        duplicates = q.duplicates + excluded.duplicates,
        late = q.late + excluded.late;

    insert into analytics.rollup_quality_reasons as q (hour, reason, rows)
    select v_hour, r.key, r.value::bigint
    from jsonb_each_text(v_m.reason_counts) as r
    order by r.key
    on conflict (hour, reason) do update
    set rows = q.rows + excluded.rows;
    return true;
end
$$;

-- Recomputes the data-quality rollups from quality.batch_metrics and the current dead letter
-- (after a replay the dead letter, not the batch's original reason_counts, is the truth).
create function analytics.rebuild_quality()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    delete from analytics.rollup_quality_reasons;
    delete from analytics.rollup_quality_hourly;

    insert into analytics.rollup_quality_hourly (
        hour, batches, files, rows, valid, invalid, duplicates, late
    )
    select
        date_trunc('hour', m.finished_at, 'UTC'),
        count(*),
        count(*) filter (where m.source_kind = 'file'),
        sum(m.rows),
        sum(m.valid),
        sum(m.invalid),
        sum(m.duplicates),
        sum(m.late)
    from quality.batch_metrics as m
    group by 1;

    insert into analytics.rollup_quality_reasons (hour, reason, rows)
    select date_trunc('hour', m.finished_at, 'UTC'), r.reason, count(*)
    from quality.dead_letter as d
    join quality.batch_metrics as m on m.batch_id = d.batch_id
    cross join lateral unnest(d.reasons) as r (reason)
    group by 1, 2;
end
$$;

revoke all on function analytics.apply_quality(bigint) from public;
revoke all on function analytics.rebuild_quality() from public;

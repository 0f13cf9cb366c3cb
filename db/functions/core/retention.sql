-- Retention and partitions ahead (deno task maintain, and the ingester every
-- MAINTAIN_INTERVAL_MINUTES). The clock is a parameter, so tests run it at any date.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The cutoff of each kind at p_now (rows/files older than it go; for partitions_ahead: the
-- time partitions are created through); null when kept forever.
create function core.retention_cutoffs(p_now timestamptz)
returns table (kind text, keep interval, action text, cutoff timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select r.kind, r.keep, r.action,
        case when r.kind = 'partitions_ahead' then p_now + r.keep else p_now - r.keep end
    from core.retention as r
    order by r.kind;
end;

-- Applies core.retention at p_now in one transaction: creates the partitions ahead, drops (or
-- detaches) whole months of core.events older than the events cutoff with their ids in the
-- dedupe guard, deletes old dead letter, metrics, alerts, replays, ledger and membership
-- rows. While the lake export is on (lake.settings), months with days not in the lake's ledger
-- are kept and named (partitions_kept_unexported), and only exported days of dead letter go.
-- Returns what it did, and records it in core.maintenance_runs.
create function core.apply_retention(p_now timestamptz)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
as $$
declare
    v_cut jsonb := '{}';
    v_keep interval;
    v_action text;
    v_ahead interval;
    v_part record;
    v_ids bigint;
    v_n bigint;
    v_dropped text[] := '{}';
    v_detached text[] := '{}';
    v_created text[];
    v_result jsonb;
    v_counts jsonb := '{}';
    v_lake boolean := coalesce((select l.is_enabled from lake.settings as l), false);
    v_days text[];
    v_kept jsonb := '{}';
begin
    if p_now is null then
        raise exception 'apply_retention needs the current time (got null)' using errcode = '22004';
    end if;
    select r.keep into v_ahead from core.retention as r where r.kind = 'partitions_ahead';

    -- partitions for the coming months, so the first batch of a month never creates one
    v_created := array(
        select c.relname::text from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
        where i.inhparent = 'core.events'::regclass
    );
    perform core.ensure_partitions(p_now, p_now + coalesce(v_ahead, interval '0'));
    v_created := array(
        select c.relname::text from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
        where i.inhparent = 'core.events'::regclass and c.relname::text <> all (v_created)
        order by 1
    );

    -- whole months of events older than the cutoff
    select r.keep, r.action into v_keep, v_action from core.retention as r where r.kind = 'events';
    if v_keep is not null then
        for v_part in
            select c.oid::regclass as rel, c.relname::text as name,
                (to_date(substring(c.relname from '^events_(\d{4}_\d{2})$'), 'YYYY_MM')::timestamp
                    at time zone 'UTC') + interval '1 month' as upper_bound
            from pg_inherits as i
            join pg_class as c on c.oid = i.inhrelid
            where i.inhparent = 'core.events'::regclass
                and c.relname ~ '^events_\d{4}_\d{2}$'
            order by c.relname
        loop
            continue when v_part.upper_bound > p_now - v_keep;
            -- the lake (docs/lake.md): while export is on, a month with days the ledger does
            -- not hold as they are stays, and is named in the result
            if v_lake then
                v_days := array(
                    select d::text from lake.unexported_days('events',
                        v_part.upper_bound - interval '1 month', v_part.upper_bound) as d
                );
                if cardinality(v_days) > 0 then
                    v_kept := v_kept || jsonb_build_object(v_part.name, to_jsonb(v_days));
                    raise warning 'retention keeps partition % of core.events: % of its day(s) are not in the lake ledger (%): run deno task export, then deno task maintain again',
                        v_part.name, cardinality(v_days), array_to_string(v_days[1:3], ', ')
                        || case when cardinality(v_days) > 3 then ', ...' else '' end;
                    continue;
                end if;
            end if;
            execute format(
                'delete from core.event_ids as i using %s as e where i.event_id = e.event_id',
                v_part.rel);
            get diagnostics v_ids = row_count;
            v_counts := v_counts || jsonb_build_object('event_ids',
                coalesce((v_counts ->> 'event_ids')::bigint, 0) + v_ids);
            execute format('alter table core.events detach partition %s', v_part.rel);
            if v_action = 'drop' then
                execute format('drop table %s', v_part.rel);
                v_dropped := v_dropped || v_part.name;
            else
                execute format('alter table %s rename to %I', v_part.rel, v_part.name || '_detached');
                v_detached := v_detached || (v_part.name || '_detached');
            end if;
        end loop;
    end if;

    select r.keep into v_keep from core.retention as r where r.kind = 'dead_letter';
    if v_keep is not null then
        -- while the lake export is on, only whole UTC days the ledger holds as they are
        -- (a partial day would look changed and overwrite the lake's copy with less)
        delete from quality.dead_letter as d
        where d.created_at < p_now - v_keep
            and (not v_lake or (d.created_at at time zone 'UTC')::date in (
                select x.day from lake.exports as x
                where x.table_name = 'dead_letter'
                    and x.day < ((p_now - v_keep) at time zone 'UTC')::date
                    and x.row_count = (
                        select count(*) from quality.dead_letter as o
                        where o.created_at >= x.day::timestamp at time zone 'UTC'
                            and o.created_at < (x.day + 1)::timestamp at time zone 'UTC'
                    )
            ));
        get diagnostics v_n = row_count;
        v_counts := v_counts || jsonb_build_object('dead_letter', v_n);
    end if;

    select r.keep into v_keep from core.retention as r where r.kind = 'batch_metrics';
    if v_keep is not null then
        delete from quality.batch_metrics as m where m.finished_at < p_now - v_keep;
        get diagnostics v_n = row_count;
        v_counts := v_counts || jsonb_build_object('batch_metrics', v_n);
        delete from quality.alerts as a where a.created_at < p_now - v_keep;
        get diagnostics v_n = row_count;
        v_counts := v_counts || jsonb_build_object('alerts', v_n);
        delete from quality.replays as r where r.finished_at < p_now - v_keep;
        get diagnostics v_n = row_count;
        v_counts := v_counts || jsonb_build_object('replays', v_n);
        delete from core.maintenance_runs as m where m.finished_at < p_now - v_keep;
    end if;

    select r.keep into v_keep from core.retention as r where r.kind = 'ledger';
    if v_keep is not null then
        -- a file still loading is never forgotten
        delete from ingest.files as f
        where f.status <> 'loading' and coalesce(f.finished_at, f.received_at) < p_now - v_keep;
        get diagnostics v_n = row_count;
        v_counts := v_counts || jsonb_build_object('ledger', v_n);
    end if;

    select r.keep into v_keep from core.retention as r where r.kind = 'analytics_membership';
    if v_keep is not null then
        delete from analytics.seen_day_visitors as v where v.day < (p_now - v_keep)::date;
        get diagnostics v_n = row_count;
        v_counts := v_counts || jsonb_build_object('seen_day_visitors', v_n);
        delete from analytics.seen_day_sessions as s where s.day < (p_now - v_keep)::date;
        get diagnostics v_n = row_count;
        v_counts := v_counts || jsonb_build_object('seen_day_sessions', v_n);
    end if;

    v_result := jsonb_build_object(
        'clock', p_now,
        'partitions_created', to_jsonb(v_created),
        'partitions_dropped', to_jsonb(v_dropped),
        'partitions_detached', to_jsonb(v_detached),
        'partitions_kept_unexported', v_kept,
        'rows_deleted', v_counts
    );
    insert into core.maintenance_runs (clock, result) values (p_now, v_result);
    return v_result;
end
$$;

revoke all on function core.retention_cutoffs(timestamptz) from public;
revoke all on function core.apply_retention(timestamptz) from public;

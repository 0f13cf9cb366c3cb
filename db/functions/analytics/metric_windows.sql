-- The window rules of the metrics catalogue (docs/metrics.md, "Windows"): which UTC days a
-- time range means, the previous period, and which hours are covered by data. Every surface
-- (report, dashboard, /v1/analytics, Grafana) asks these functions instead of doing date
-- arithmetic itself.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The last UTC day of a time range [p_from, p_to): the day holding the range's last instant.
-- Grafana's "Last 7 days" (now-7d .. now) ends today.
create function analytics.window_last_day(p_to timestamptz)
returns date
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
return ((p_to - interval '1 microsecond') at time zone 'UTC')::date;

-- The first UTC day of a time range: as many whole UTC days as the range is long (rounded up),
-- ending on window_last_day. "Last 7 days" (now-7d .. now) is 7 UTC days, today included,
-- never 8.
create function analytics.window_first_day(p_from timestamptz, p_to timestamptz)
returns date
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
return analytics.window_last_day(p_to)
    - greatest(ceil(extract(epoch from p_to - p_from) / 86400)::int, 1) + 1;

revoke all on function analytics.window_last_day(timestamptz) from public;
revoke all on function analytics.window_first_day(timestamptz, timestamptz) from public;
grant execute on function analytics.window_last_day(timestamptz) to pipeline_analyst;
grant execute on function analytics.window_first_day(timestamptz, timestamptz)
    to pipeline_analyst;

-- A reporting period of whole UTC days and the one it is compared with: p_from .. p_to
-- (inclusive; NULL = the default "last 7 days": 7 UTC days ending today), the previous period
-- of the same length just before it, and, when the period has not ended yet (is_partial), the
-- hour up to which both are compared: the current period up to the current hour, the previous
-- one up to the same hour of its own span (like for like). Raises 22023 for a reversed range or
-- one longer than 366 days.
create function analytics.metric_period(p_from date default null, p_to date default null)
returns table (
    from_day date, to_day date, days int, previous_from date, previous_to date,
    is_partial boolean, cutoff timestamptz, previous_cutoff timestamptz
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_to date := coalesce(p_to, analytics.window_last_day(now()));
    v_from date := coalesce(p_from, v_to - 6);
    v_days int;
    v_start timestamptz;
    v_end timestamptz;
    v_cutoff timestamptz;
begin
    if v_from > v_to then
        raise exception 'The period starts (%) after it ends (%): swap from and to', v_from, v_to
            using errcode = '22023';
    end if;
    v_days := v_to - v_from + 1;
    if v_days > 366 then
        raise exception 'The period is % days: choose at most 366', v_days
            using errcode = '22023';
    end if;
    v_start := v_from::timestamp at time zone 'UTC';
    v_end := (v_to + 1)::timestamp at time zone 'UTC';
    -- the hour in progress counts as elapsed (its figures so far are shown)
    v_cutoff := greatest(least(v_end, date_trunc('hour', now(), 'UTC') + interval '1 hour'),
        v_start);
    return query select
        v_from,
        v_to,
        v_days,
        v_from - v_days,
        v_from - 1,
        now() < v_end,
        v_cutoff,
        (v_from - v_days)::timestamp at time zone 'UTC' + (v_cutoff - v_start);
end
$$;

revoke all on function analytics.metric_period(date, date) from public;
grant execute on function analytics.metric_period(date, date) to pipeline_analyst;

-- How much of [p_start, p_end) the data covers, in whole UTC hours. An hour is covered when it
-- lies between the first hour with events and the pipeline's watermark (the latest hour with
-- events) and its UTC day has events: hours before the data starts, after it stops, or on a
-- day without any event are not covered (docs/metrics.md, "Coverage").
create function analytics.coverage(p_start timestamptz, p_end timestamptz)
returns table (hours int, covered_hours int, days int, covered_days int)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with span as (
        select min(hour) as first_hour, max(hour) as watermark
        from analytics.kpi_hourly
        where events > 0
    ),

    event_days as (
        select distinct (hour at time zone 'UTC')::date as day
        from analytics.kpi_hourly
        where events > 0 and hour >= p_start and hour < p_end
    ),

    slots as (
        select h as hour, (h at time zone 'UTC')::date as day
        from generate_series(p_start, p_end - interval '1 hour', interval '1 hour') as h
    ),

    marked as (
        select
            s.hour,
            s.day,
            s.hour >= p.first_hour and s.hour <= p.watermark
                and exists (select from event_days as e where e.day = s.day) as is_covered
        from slots as s
        cross join span as p
    )

    select
        count(*)::int,
        (count(*) filter (where is_covered))::int,
        (count(distinct day))::int,
        (count(distinct day) filter (where is_covered))::int
    from marked;
end
$$;

revoke all on function analytics.coverage(timestamptz, timestamptz) from public;
grant execute on function analytics.coverage(timestamptz, timestamptz) to pipeline_analyst;

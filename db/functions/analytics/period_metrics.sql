-- The period figures of the metrics catalogue (docs/metrics.md): a period's revenue, orders,
-- units, aov, sessions, purchase sessions and session conversion, each with the previous period
-- and a change that is given only when both periods are covered by data.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- One row per metric for the UTC days p_from .. p_to (NULL = the last 7 days, today
-- included) and the previous period (analytics.metric_period). A partial period (today not
-- over) is compared like for like, up to the same hour of the previous period. change =
-- (value - previous_value) / previous_value, only when is_comparable: both periods fully
-- covered (analytics.coverage) and a previous value above 0; otherwise NULL and comparison says
-- why. Sums are sums of the days' figures (revenue: each day's currencies at that day's rate,
-- rounded to the cent per day, as in analytics.daily_sales); rates are ratios of those sums.
-- SECURITY DEFINER: the money conversion lives in schema core, which the analyst cannot use.
create function analytics.period_metrics(p_from date default null, p_to date default null)
returns table (
    metric text, value numeric, previous_value numeric, change numeric,
    is_comparable boolean, comparison text, unit text, from_day date, to_day date,
    previous_from date, previous_to date, is_partial boolean, coverage numeric,
    previous_coverage numeric
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    p record;
    cur_cov record;
    prev_cov record;
    v_start timestamptz;
    v_prev_start timestamptz;
    v_reason text;
    v_currency text := core.reporting_currency();
begin
    select * into p from analytics.metric_period(p_from, p_to);
    v_start := p.from_day::timestamp at time zone 'UTC';
    v_prev_start := p.previous_from::timestamp at time zone 'UTC';
    select * into cur_cov from analytics.coverage(v_start, p.cutoff);
    select * into prev_cov from analytics.coverage(v_prev_start, p.previous_cutoff);

    v_reason := case
        when prev_cov.covered_hours < prev_cov.hours then format(
            'not comparable: the previous period %s – %s has data in %s of its %s hours (%s of %s days)',
            p.previous_from, p.previous_to, prev_cov.covered_hours, prev_cov.hours,
            prev_cov.covered_days, prev_cov.days)
        when cur_cov.covered_hours < cur_cov.hours then format(
            'not comparable: the period %s – %s has data in %s of its %s hours so far (%s of %s days)',
            p.from_day, p.to_day, cur_cov.covered_hours, cur_cov.hours, cur_cov.covered_days,
            cur_cov.days)
    end;

    return query
    with sides (side, start_at, end_at, first_day, last_day) as (
        values
            ('current', v_start, p.cutoff, p.from_day, p.to_day),
            ('previous', v_prev_start, p.previous_cutoff, p.previous_from, p.previous_to)
    ),

    per_day as (
        select
            s.side,
            h.day,
            round(sum(core.to_reporting(h.revenue, h.currency, h.day)), 2) as revenue,
            sum(h.orders) as orders,
            sum(h.units) as units
        from sides as s
        cross join lateral (
            select (k.hour at time zone 'UTC')::date as day, k.currency,
                sum(k.revenue) as revenue, sum(k.orders) as orders, sum(k.units) as units
            from analytics.kpi_hourly as k
            where k.hour >= s.start_at and k.hour < s.end_at
            group by 1, 2
        ) as h
        group by s.side, h.day
    ),

    sales as (
        select side, sum(revenue) as revenue, sum(orders) as orders, sum(units) as units
        from per_day
        group by side
    ),

    sessions as (
        select
            s.side,
            count(k.session_id) as sessions,
            count(k.session_id) filter (where k.orders > 0) as purchase_sessions
        from sides as s
        left join analytics.kpi_sessions as k
            on k.day between s.first_day and s.last_day and k.first_event_at < s.end_at
        group by s.side
    ),

    figures as (
        select
            s.side,
            coalesce(m.revenue, 0.00) as revenue,
            coalesce(m.orders, 0)::numeric as orders,
            coalesce(m.units, 0)::numeric as units,
            round(m.revenue / nullif(m.orders, 0), 2) as aov,
            x.sessions::numeric as sessions,
            x.purchase_sessions::numeric as purchase_sessions,
            round(x.purchase_sessions::numeric / nullif(x.sessions, 0), 6)
                as session_conversion_rate
        from sides as s
        left join sales as m on m.side = s.side
        left join sessions as x on x.side = s.side
    ),

    long as (
        select f.side, v.metric, v.position, v.value, v.unit
        from figures as f
        cross join lateral (
            values
                ('revenue', 1, f.revenue, v_currency),
                ('orders', 2, f.orders, 'orders'),
                ('units', 3, f.units, 'units'),
                ('aov', 4, f.aov, v_currency),
                ('sessions', 5, f.sessions, 'sessions'),
                ('purchase_sessions', 6, f.purchase_sessions, 'sessions'),
                ('session_conversion_rate', 7, f.session_conversion_rate, 'ratio')
        ) as v (metric, position, value, unit)
    ),

    paired as (
        select c.metric, c.position, c.unit, c.value, r.value as previous_value
        from long as c
        join long as r on r.metric = c.metric and r.side = 'previous'
        where c.side = 'current'
    )

    select
        x.metric,
        x.value,
        x.previous_value,
        case when v_reason is null and x.previous_value > 0
            then round((x.value - x.previous_value) / x.previous_value, 6) end,
        v_reason is null and x.previous_value > 0,
        coalesce(v_reason, case
            when x.previous_value is null or x.previous_value = 0 then format(
                'not comparable: the previous period %s – %s has no %s to compare with',
                p.previous_from, p.previous_to, x.metric)
            when p.is_partial then format(
                'partial period: %s – %s up to %s UTC, compared with %s – %s up to %s UTC',
                p.from_day, p.to_day, to_char(p.cutoff at time zone 'UTC', 'YYYY-MM-DD HH24:MI'),
                p.previous_from, p.previous_to,
                to_char(p.previous_cutoff at time zone 'UTC', 'YYYY-MM-DD HH24:MI'))
            else format('compared with %s – %s', p.previous_from, p.previous_to)
        end),
        x.unit,
        p.from_day,
        p.to_day,
        p.previous_from,
        p.previous_to,
        p.is_partial,
        round(cur_cov.covered_hours::numeric / nullif(cur_cov.hours, 0), 6),
        round(prev_cov.covered_hours::numeric / nullif(prev_cov.hours, 0), 6)
    from paired as x
    order by x.position;
end
$$;

revoke all on function analytics.period_metrics(date, date) from public;
grant execute on function analytics.period_metrics(date, date) to pipeline_analyst;

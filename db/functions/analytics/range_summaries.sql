-- Figures over a range of UTC days, for the tables of the report, the dashboard and Grafana:
-- one definition of how the daily views add up over a range (counts and money are summed, rates
-- are ratios of the sums, never averages of daily rates). p_from / p_to NULL = no bound.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Per value of a channel ('traffic_source' or 'device', of the session's first event that day)
-- over the days: sessions, purchase_sessions, orders, revenue (reporting currency),
-- session_conversion_rate = purchase_sessions / sessions, aov = revenue / orders. Visitors are
-- left out: distinct per day, they do not add up over days.
create function analytics.channel_summary(p_channel text, p_from date, p_to date)
returns table (
    value text, sessions bigint, purchase_sessions bigint, orders bigint, revenue numeric,
    session_conversion_rate numeric, aov numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_channel not in ('traffic_source', 'device') then
        raise exception 'Unknown channel "%": use traffic_source or device', p_channel
            using errcode = '22023';
    end if;
    return query
    select
        c.value,
        sum(c.sessions)::bigint,
        sum(c.purchase_sessions)::bigint,
        sum(c.orders)::bigint,
        sum(c.revenue),
        round(sum(c.purchase_sessions)::numeric / nullif(sum(c.sessions), 0), 6),
        round(sum(c.revenue) / nullif(sum(c.orders), 0), 2)
    from analytics.channel_performance as c
    where c.channel = p_channel
        and (p_from is null or c.day >= p_from)
        and (p_to is null or c.day <= p_to)
    group by c.value
    order by sum(c.revenue) desc, c.value;
end
$$;

-- The funnel over the days: one row per step (1 viewed, 2 added to cart, 3 purchased) with the
-- sessions summed over the days (a session is counted on each UTC day it has the step), the
-- rate from the previous step and from the first.
create function analytics.funnel_summary(p_from date, p_to date)
returns table (
    step_number int, step text, sessions bigint, rate_from_previous numeric, rate_from_first numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with totals as (
        select
            coalesce(sum(f.view_sessions), 0)::bigint as viewed,
            coalesce(sum(f.add_to_cart_sessions), 0)::bigint as carted,
            coalesce(sum(f.purchase_sessions), 0)::bigint as purchased
        from analytics.funnel as f
        where (p_from is null or f.day >= p_from) and (p_to is null or f.day <= p_to)
    )

    select s.step_number, s.step, s.sessions,
        round(s.sessions::numeric / nullif(s.previous, 0), 6),
        round(s.sessions::numeric / nullif(t.viewed, 0), 6)
    from totals as t
    cross join lateral (
        values
            (1, 'Viewed a product', t.viewed, null::bigint),
            (2, 'Added to cart', t.carted, t.viewed),
            (3, 'Purchased', t.purchased, t.carted)
    ) as s (step_number, step, sessions, previous)
    order by s.step_number;
end
$$;

-- Cart abandonment per category over the days: carts, abandoned_carts, abandonment_rate
-- = abandoned / carts, abandoned_value (reporting currency).
create function analytics.cart_abandonment_summary(p_from date, p_to date)
returns table (
    category text, carts bigint, abandoned_carts bigint, abandonment_rate numeric,
    abandoned_value numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select
        c.category,
        sum(c.carts)::bigint,
        sum(c.abandoned_carts)::bigint,
        round(sum(c.abandoned_carts)::numeric / nullif(sum(c.carts), 0), 6),
        sum(c.abandoned_value)
    from analytics.cart_abandonment as c
    where (p_from is null or c.day >= p_from) and (p_to is null or c.day <= p_to)
    group by c.category
    order by sum(c.abandoned_value) desc, c.category;
end
$$;

-- Rows ingested over the days (UTC hours of ingestion): rows, valid, invalid, duplicates and
-- validity_rate = valid / (valid + invalid), plus the dead-letter reasons with their rows.
create function analytics.quality_summary(p_from date, p_to date)
returns table (
    rows bigint, valid bigint, invalid bigint, duplicates bigint, validity_rate numeric,
    reasons jsonb
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_start timestamptz := p_from::timestamp at time zone 'UTC';
    v_end timestamptz := (p_to + 1)::timestamp at time zone 'UTC';
begin
    return query
    with hours as (
        select
            coalesce(sum(q.rows), 0)::bigint as rows,
            coalesce(sum(q.valid), 0)::bigint as valid,
            coalesce(sum(q.invalid), 0)::bigint as invalid,
            coalesce(sum(q.duplicates), 0)::bigint as duplicates
        from analytics.rollup_quality_hourly as q
        where (p_from is null or q.hour >= v_start) and (p_to is null or q.hour < v_end)
    ),

    reasons as (
        select r.reason, sum(r.rows)::bigint as rows
        from analytics.rollup_quality_reasons as r
        where (p_from is null or r.hour >= v_start) and (p_to is null or r.hour < v_end)
        group by r.reason
    )

    select h.rows, h.valid, h.invalid, h.duplicates,
        round(h.valid::numeric / nullif(h.valid + h.invalid, 0), 6),
        coalesce((
            select jsonb_agg(jsonb_build_object('reason', r.reason, 'rows', r.rows)
                order by r.rows desc, r.reason)
            from reasons as r
        ), '[]'::jsonb)
    from hours as h;
end
$$;

revoke all on function analytics.channel_summary(text, date, date) from public;
revoke all on function analytics.funnel_summary(date, date) from public;
revoke all on function analytics.cart_abandonment_summary(date, date) from public;
revoke all on function analytics.quality_summary(date, date) from public;
grant execute on function analytics.channel_summary(text, date, date) to pipeline_analyst;
grant execute on function analytics.funnel_summary(date, date) to pipeline_analyst;
grant execute on function analytics.cart_abandonment_summary(date, date) to pipeline_analyst;
grant execute on function analytics.quality_summary(date, date) to pipeline_analyst;

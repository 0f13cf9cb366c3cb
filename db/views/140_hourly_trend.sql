-- analytics.hourly_trend: per UTC hour from the first hour with events to the watermark (the
-- latest hour with events), zero-filled: events, orders and revenue (reporting currency), the
-- same figures for the same hour a week earlier, and the changes ((now - then) / then), given
-- only when both hours are covered (docs/metrics.md, "Coverage": an hour is covered when it has
-- at least one event: an hour without a single event is missing data, not a quiet shop), the
-- hour has ended and the base a week earlier is at least 5 (events for events_change, orders for
-- orders_change and revenue_change: a change from 1 or 2 orders is noise, not a trend).
-- comparison says why a change is missing. is_partial: the hour has not ended yet.
drop view if exists analytics.hourly_trend;
create view analytics.hourly_trend as
with hours as (
    select
        hour,
        sum(events) as events,
        sum(orders) as orders,
        sum(core.to_reporting(revenue, currency, (hour at time zone 'UTC')::date)) as revenue
    from analytics.kpi_hourly
    group by hour
),

span as (
    select min(hour) as first_hour, max(hour) as watermark
    from hours
    where events > 0
),

filled as (
    select
        s.hour,
        coalesce(h.events, 0) as events,
        coalesce(h.orders, 0) as orders,
        round(coalesce(h.revenue, 0), 2) as revenue,
        coalesce(h.events, 0) > 0 as is_covered
    from span as p
    cross join lateral generate_series(p.first_hour, p.watermark, interval '1 hour') as s (hour)
    left join hours as h on h.hour = s.hour
),

compared as (
    select
        f.*,
        w.events as last_week_events,
        w.orders as last_week_orders,
        w.revenue as last_week_revenue,
        coalesce(w.is_covered, false) as last_week_covered,
        f.hour + interval '1 hour' > now() as is_partial
    from filled as f
    left join filled as w on w.hour = f.hour - interval '7 days'
)

select
    hour,
    events,
    orders,
    revenue,
    coalesce(last_week_events, 0) as last_week_events,
    coalesce(last_week_orders, 0) as last_week_orders,
    coalesce(last_week_revenue, 0.00) as last_week_revenue,
    case when is_covered and last_week_covered and not is_partial and last_week_events >= 5
        then round((events - last_week_events)::numeric / last_week_events, 6)
    end as events_change,
    case when is_covered and last_week_covered and not is_partial and last_week_orders >= 5
        then round((orders - last_week_orders)::numeric / last_week_orders, 6)
    end as orders_change,
    case when is_covered and last_week_covered and not is_partial and last_week_orders >= 5
        then round((revenue - last_week_revenue) / nullif(last_week_revenue, 0), 6)
    end as revenue_change,
    is_partial,
    is_covered,
    last_week_covered,
    case
        when not last_week_covered then 'not comparable: no data for the hour a week earlier'
        when not is_covered then 'not comparable: no events in this hour (no data)'
        when is_partial then 'partial: the hour has not ended'
        when last_week_orders < 5 then format(
            'not comparable: %s order%s a week earlier (at least 5 needed)', last_week_orders,
            case when last_week_orders = 1 then '' else 's' end)
        else 'compared with the same hour a week earlier'
    end as comparison
from compared;

comment on view analytics.hourly_trend is
'Per UTC hour, first hour with events to the watermark, zero-filled: events, orders, revenue (reporting currency), the same a week earlier, events/orders/revenue_change only when both hours are covered, the hour is over and the base a week earlier is >= 5 events / orders (else NULL, comparison says why), is_partial, is_covered, last_week_covered.';

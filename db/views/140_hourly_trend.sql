-- analytics.hourly_trend: per UTC hour with events, events, orders and revenue (reporting
-- currency), the same figures for the same hour a week earlier, the change ((now - then) /
-- then, null when then is 0) and is_partial: the hour has not ended yet, so its figures are
-- still growing (dashboards mark it instead of showing a drop).
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
)

select
    h.hour,
    h.events,
    h.orders,
    round(h.revenue, 2) as revenue,
    coalesce(w.events, 0) as last_week_events,
    coalesce(w.orders, 0) as last_week_orders,
    round(coalesce(w.revenue, 0), 2) as last_week_revenue,
    round((h.events - w.events)::numeric / nullif(w.events, 0), 6) as events_change,
    round((h.orders - w.orders)::numeric / nullif(w.orders, 0), 6) as orders_change,
    round((h.revenue - w.revenue) / nullif(w.revenue, 0), 6) as revenue_change,
    h.hour + interval '1 hour' > now() as is_partial
from hours as h
left join hours as w on w.hour = h.hour - interval '7 days';

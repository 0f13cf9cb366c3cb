-- analytics.hourly_events: one row per UTC hour and event type, from the first to the last hour
-- with events, every event type of the contract (ingest.domain) in every hour: an hour or a type
-- without events is zero-filled (events 0, visitors 0, revenue 0.00; docs/metrics.md).
-- revenue: purchases only, in reporting_currency at the hour's UTC day rate.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.hourly_events;
create view analytics.hourly_events as
with span as (
    select min(hour) as first_hour, max(hour) as last_hour
    from analytics.rollup_hourly
    where events > 0
),

grid as (
    select s.hour, t.event_type
    from span as p
    cross join lateral generate_series(p.first_hour, p.last_hour, interval '1 hour') as s (hour)
    cross join unnest(ingest.domain('event_type')) as t (event_type)
),

hourly as (
    select g.hour, g.event_type, coalesce(r.events, 0) as events,
        coalesce(r.visitors, 0) as visitors
    from grid as g
    left join analytics.rollup_hourly as r on r.hour = g.hour and r.event_type = g.event_type
),

money as (
    select
        hour,
        round(sum(core.to_reporting(revenue, currency, (hour at time zone 'UTC')::date)), 2)
            as revenue
    from (
        select hour, currency, sum(revenue) as revenue
        from analytics.rollup_revenue
        group by hour, currency
    ) as c
    group by hour
),

final as (
    select
        h.hour,
        h.event_type,
        h.events,
        h.visitors,
        case when h.event_type = 'purchase' then coalesce(m.revenue, 0.00) else 0.00 end as revenue,
        core.reporting_currency() as reporting_currency
    from hourly as h
    left join money as m on m.hour = h.hour and h.event_type = 'purchase'
)

select * from final;

comment on view analytics.hourly_events is
'Per UTC hour x event type (zero-filled: every event type in every hour from the first to the last hour with events): events, distinct visitors, revenue (purchases only, 0 for other types; in reporting_currency at the day''s rate).';

grant select on analytics.hourly_events to pipeline_analyst;

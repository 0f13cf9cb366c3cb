-- analytics.hourly_events: one row per UTC hour and event type that has events.
-- revenue: purchases only, in reporting_currency at the hour's UTC day rate.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.hourly_events;
create view analytics.hourly_events as
with hourly as (
    select hour, event_type, events, visitors
    from analytics.rollup_hourly
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
'Per UTC hour x event type: events, distinct visitors, revenue (purchases only, 0 for other types; in reporting_currency at the day''s rate).';

grant select on analytics.hourly_events to pipeline_analyst;

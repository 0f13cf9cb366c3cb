-- analytics.hourly_events: one row per UTC hour and event type that has events.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.hourly_events;
create view analytics.hourly_events as
with hourly as (
    select hour, event_type, events, visitors, revenue
    from analytics.rollup_hourly
),

final as (
    select hour, event_type, events, visitors, revenue
    from hourly
)

select * from final;

comment on view analytics.hourly_events is
'Per UTC hour x event type: events, distinct visitors, revenue (purchases only, 0 for other types).';

grant select on analytics.hourly_events to pipeline_analyst;

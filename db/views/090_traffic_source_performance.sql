-- analytics.traffic_source_performance: analytics.channel_performance for the traffic source of each session (its
-- first event that day; 'unknown' when it has none), per UTC day: visitors, sessions,
-- purchase_sessions, orders, revenue in the reporting currency, session_conversion_rate and aov.
drop view if exists analytics.traffic_source_performance;
create view analytics.traffic_source_performance as
select
    day,
    value as traffic_source,
    visitors,
    sessions,
    purchase_sessions,
    orders,
    revenue,
    session_conversion_rate,
    aov
from analytics.channel_performance
where channel = 'traffic_source';

-- analytics.device_performance: analytics.channel_performance for the device of each session (its
-- first event that day; 'unknown' when it has none), per UTC day: visitors, sessions,
-- purchase_sessions, orders, revenue in the reporting currency, session_conversion_rate and aov.
drop view if exists analytics.device_performance;
create view analytics.device_performance as
select
    day,
    value as device,
    visitors,
    sessions,
    purchase_sessions,
    orders,
    revenue,
    session_conversion_rate,
    aov
from analytics.channel_performance
where channel = 'device';

-- analytics.channel_performance: per UTC day, channel ('traffic_source' or 'device') and its
-- value (of the session's first event that day; 'unknown' when it has none): visitors,
-- sessions, orders, revenue in the reporting currency, purchase_sessions (with a purchase),
-- session_conversion_rate (purchase sessions / all sessions) and aov. Visitors are distinct per day: over several
-- days, sum sessions, not visitors. Read time over analytics.kpi_sessions (one row per session
-- and day): filter on day to read only those days. traffic_source_performance and
-- device_performance are its two channels.
drop view if exists analytics.channel_performance cascade;
create view analytics.channel_performance as
with revenue as (
    select day, session_id, sum(core.to_reporting(revenue, currency, day)) as revenue
    from analytics.kpi_session_revenue
    group by day, session_id
),

grouped as (
    select
        s.day,
        c.channel,
        coalesce(c.value, 'unknown') as value,
        count(distinct coalesce(s.user_id::text, 'guest:' || s.session_id)) as visitors,
        count(*) as sessions,
        count(*) filter (where s.orders > 0) as purchase_sessions,
        sum(s.orders) as orders,
        coalesce(sum(r.revenue), 0) as revenue
    from analytics.kpi_sessions as s
    cross join lateral (
        values ('traffic_source', s.traffic_source), ('device', s.device)
    ) as c (channel, value)
    left join revenue as r on r.day = s.day and r.session_id = s.session_id
    group by s.day, c.channel, coalesce(c.value, 'unknown')
)

select
    day,
    channel,
    value,
    visitors,
    sessions,
    purchase_sessions,
    orders,
    round(revenue, 2) as revenue,
    round(purchase_sessions::numeric / sessions, 6) as session_conversion_rate,
    case when orders > 0 then round(revenue / orders, 2) end as aov
from grouped;

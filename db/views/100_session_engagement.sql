-- analytics.session_engagement: per UTC day, sessions, events per session, median and p90
-- session duration in seconds (last minus first event of the session that day), bounce rate
-- (sessions with a single event) and the share of sessions with a search. Medians cannot be
-- summed: computed when read from analytics.kpi_sessions (one row per session and day).
drop view if exists analytics.session_engagement;
create view analytics.session_engagement as
with durations as (
    select
        day,
        events,
        searches,
        extract(epoch from last_event_at - first_event_at) as seconds
    from analytics.kpi_sessions
)

select
    day,
    count(*) as sessions,
    round(sum(events)::numeric / count(*), 2) as events_per_session,
    round(percentile_cont(0.5) within group (order by seconds)::numeric, 1)
        as median_duration_seconds,
    round(percentile_cont(0.9) within group (order by seconds)::numeric, 1)
        as p90_duration_seconds,
    round((count(*) filter (where events = 1))::numeric / count(*), 6) as bounce_rate,
    round((count(*) filter (where searches > 0))::numeric / count(*), 6) as search_session_rate
from durations
group by day;

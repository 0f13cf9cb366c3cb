-- analytics.session_engagement: per UTC day, sessions, events per session, median and p90
-- session duration in seconds (last minus first event of the session that day), bounce rate
-- (sessions with a single event) and the share of sessions with a search. Medians cannot be
-- summed: computed when read from analytics.kpi_sessions (one row per session and day). Days
-- without sessions between the first and the last are zero-filled (sessions 0, rates NULL).
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
group by day
union all
-- days without sessions between the first and the last one: zero sessions, no rates
select d::date, 0, null, null, null, null, null
from generate_series(
    (select min(day) from analytics.kpi_sessions),
    (select max(day) from analytics.kpi_sessions),
    interval '1 day'
) as d
where not exists (select from analytics.kpi_sessions as k where k.day = d::date);

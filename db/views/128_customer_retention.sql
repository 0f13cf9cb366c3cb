-- analytics.customer_retention: weekly cohorts of customers by the UTC week (Monday) of their
-- first purchase; for each week since (0 = the first week) up to the latest week with events,
-- zero-filled: cohort_customers, active_customers (customers of the cohort with a purchase in
-- that week) and retention_rate = active / cohort. Week 0 is 1 by definition.
drop view if exists analytics.customer_retention;
create view analytics.customer_retention as
with purchase_weeks as (
    select distinct user_id, date_trunc('week', day)::date as week
    from analytics.kpi_customer_days
),

firsts as (
    select user_id, min(week) as cohort_week
    from purchase_weeks
    group by user_id
),

cohorts as (
    select cohort_week, count(*) as cohort_customers
    from firsts
    group by cohort_week
),

latest as (
    select date_trunc('week', max(day))::date as week
    from analytics.kpi_sessions
),

grid as (
    select c.cohort_week, c.cohort_customers, w::date as week
    from cohorts as c
    cross join latest as l
    cross join lateral generate_series(c.cohort_week, l.week, interval '7 days') as w
),

active as (
    select f.cohort_week, p.week, count(*) as active_customers
    from firsts as f
    join purchase_weeks as p on p.user_id = f.user_id
    group by f.cohort_week, p.week
)

select
    g.cohort_week,
    (g.week - g.cohort_week) / 7 as weeks_since,
    g.cohort_customers,
    coalesce(a.active_customers, 0) as active_customers,
    round(coalesce(a.active_customers, 0)::numeric / g.cohort_customers, 6) as retention_rate
from grid as g
left join active as a on a.cohort_week = g.cohort_week and a.week = g.week;

comment on view analytics.customer_retention is
'Per weekly cohort (UTC week of the first purchase, Monday) x weeks since, zero-filled to the latest week with events: cohort_customers, active_customers (purchased that week), retention_rate = active / cohort.';

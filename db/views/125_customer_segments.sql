-- analytics.customer_segments: the segments as of the latest UTC day with events (the last day
-- of analytics.customer_segment_history), with their share of all customers.
drop view if exists analytics.customer_segments;
create view analytics.customer_segments as
with latest as (
    select *
    from analytics.customer_segment_history
    where day = (select max(day) from analytics.kpi_sessions)
)

select
    day as as_of,
    segment,
    customers,
    round(customers::numeric / sum(customers) over (), 6) as share,
    orders,
    ltv,
    avg_ltv
from latest;

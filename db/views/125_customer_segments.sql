-- analytics.customer_segments: the customers of analytics.customer_rfm per segment (as of the
-- latest UTC day with events), their share of all customers, orders and lifetime value
-- (historical_ltv: revenue to date, reporting currency) in total and on average. The same
-- figures as the last day of analytics.customer_segment_history.
drop view if exists analytics.customer_segments;
create view analytics.customer_segments as
select
    max(as_of_day) as as_of,
    segment,
    count(*) as customers,
    round(count(*)::numeric / sum(count(*)) over (), 6) as share,
    sum(frequency)::bigint as orders,
    sum(historical_ltv) as ltv,
    round(avg(historical_ltv), 2) as avg_ltv
from analytics.customer_rfm
group by segment;

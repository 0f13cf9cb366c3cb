-- analytics.customer_rfm: one row per user with at least one purchase, as of the latest UTC day
-- with events (as_of_day). historical_ltv is the customer's revenue to date (the default
-- lifetime value, docs/metrics.md "LTV"); annual_revenue_run_rate is an annualised figure under
-- its own name, given only for customers with at least 2 orders and 30 days of tenure. segment
-- is analytics.customer_segment as of as_of_day, the same rule as analytics.customer_segments.
-- NTILE ties are broken by user_id so the scores are reproducible. Money in reporting_currency,
-- each day's purchases at that day's rate.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.customer_rfm cascade;
create view analytics.customer_rfm as
with customer_days as (
    select
        user_id,
        day,
        sum(orders) as orders,
        sum(core.to_reporting(revenue, currency, day)) as revenue
    from analytics.kpi_customer_days
    group by user_id, day
),

customers as (
    select
        user_id,
        sum(orders)::bigint as orders,
        round(sum(revenue), 2) as historical_ltv,
        min(day) as first_purchase_day,
        max(day) as last_purchase_day
    from customer_days
    group by user_id
),

data_end as (
    select max(day) as as_of_day
    from analytics.kpi_sessions
),

measured as (
    select
        c.user_id,
        d.as_of_day - c.last_purchase_day as recency_days,
        c.orders as frequency,
        c.historical_ltv,
        d.as_of_day - c.first_purchase_day as tenure_days,
        c.first_purchase_day,
        c.last_purchase_day,
        d.as_of_day
    from customers as c
    cross join data_end as d
),

scored as (
    select
        m.*,
        ntile(5) over (order by m.last_purchase_day, m.user_id) as r_score,
        ntile(5) over (order by m.frequency, m.user_id) as f_score,
        ntile(5) over (order by m.historical_ltv, m.user_id) as m_score
    from measured as m
),

final as (
    select
        user_id,
        recency_days,
        frequency,
        historical_ltv,
        r_score,
        f_score,
        m_score,
        analytics.customer_segment(recency_days, tenure_days, frequency, historical_ltv)
            as segment,
        case
            when frequency >= 2 and tenure_days >= 30
                then round(historical_ltv / tenure_days * 365, 2)
        end as annual_revenue_run_rate,
        tenure_days,
        first_purchase_day,
        last_purchase_day,
        as_of_day,
        core.reporting_currency() as reporting_currency
    from scored
)

select * from final;

comment on view analytics.customer_rfm is
'Per purchasing user, as of the latest UTC day with events (as_of_day): recency_days (days since the last purchase day), frequency (orders), historical_ltv (revenue to date in reporting_currency, each day at its rate: the lifetime value), r/f/m scores 1-5 by NTILE(5) (more recent, more orders, more revenue = higher), segment (analytics.customer_segment), annual_revenue_run_rate = historical_ltv / tenure_days * 365 only with >= 2 orders and >= 30 days of tenure (else NULL), tenure_days (since the first purchase day).';

grant select on analytics.customer_rfm to pipeline_analyst;

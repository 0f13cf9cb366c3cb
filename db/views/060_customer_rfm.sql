-- analytics.customer_rfm: one row per user with at least one purchase, as of the latest
-- event_time in the data. NTILE ties are broken by user_id so the scores are reproducible.
-- monetary and ltv in reporting_currency, each day's purchases at that day's rate.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.customer_rfm;
create view analytics.customer_rfm as
with money as (
    select user_id, round(sum(core.to_reporting(revenue, currency, day)), 2) as revenue
    from analytics.rollup_customer_revenue
    group by user_id
),

customers as (
    select c.user_id, c.orders, coalesce(m.revenue, 0.00) as revenue, c.first_purchase_at,
        c.last_purchase_at
    from analytics.rollup_customers as c
    left join money as m on m.user_id = c.user_id
),

data_end as (
    select max(last_event_at) as as_of
    from analytics.rollup_daily
),

measured as (
    select
        c.user_id,
        d.as_of,
        floor(extract(epoch from d.as_of - c.last_purchase_at) / 86400)::int as recency_days,
        c.orders as frequency,
        c.revenue as monetary,
        extract(epoch from c.last_purchase_at - c.first_purchase_at) / 86400 as lifespan_days,
        c.first_purchase_at,
        c.last_purchase_at
    from customers as c
    cross join data_end as d
),

scored as (
    select
        m.*,
        ntile(5) over (order by m.last_purchase_at, m.user_id) as r_score,
        ntile(5) over (order by m.frequency, m.user_id) as f_score,
        ntile(5) over (order by m.monetary, m.user_id) as m_score
    from measured as m
),

final as (
    select
        user_id,
        recency_days,
        frequency,
        monetary,
        r_score,
        f_score,
        m_score,
        case
            when recency_days <= 30 then 'active'
            when recency_days <= 90 then 'at_risk'
            when recency_days <= 180 then 'dormant'
            else 'churned'
        end as status,
        round(
            case when lifespan_days < 1 then monetary else monetary / lifespan_days * 365 end, 2
        ) as ltv,
        round(lifespan_days, 4) as lifespan_days,
        first_purchase_at,
        last_purchase_at,
        as_of,
        core.reporting_currency() as reporting_currency
    from scored
)

select * from final;

comment on view analytics.customer_rfm is
'Per purchasing user, as of the latest event_time: recency_days (whole days since the last purchase), frequency (orders), monetary (revenue in reporting_currency, each day at its rate), r/f/m scores 1-5 by NTILE(5) (more recent, more orders, more revenue = higher), status active <= 30 d, at_risk <= 90 d, dormant <= 180 d, else churned; ltv = monetary / lifespan_days * 365 (monetary when lifespan < 1 day).';

grant select on analytics.customer_rfm to pipeline_analyst;

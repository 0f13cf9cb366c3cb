-- analytics.daily_revenue_by_currency: the finance breakdown of daily_sales.revenue, one row
-- per UTC day and currency paid in: the amount in that currency, the rate used and the amount
-- in the reporting currency (sum over a day = daily_sales.revenue, up to the cent rounding).
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.daily_revenue_by_currency;
create view analytics.daily_revenue_by_currency as
with per_currency as (
    select
        (hour at time zone 'UTC')::date as day,
        currency,
        sum(orders)::bigint as orders,
        sum(units)::bigint as units,
        sum(revenue) as revenue
    from analytics.rollup_revenue
    group by 1, 2
),

final as (
    select
        day,
        currency,
        orders,
        units,
        revenue,
        round(core.to_reporting(1, currency, day), 10) as rate_to_reporting,
        round(core.to_reporting(revenue, currency, day), 2) as revenue_reporting,
        core.reporting_currency() as reporting_currency
    from per_currency
)

select * from final;

comment on view analytics.daily_revenue_by_currency is
'Per UTC day x currency paid in: orders, units, revenue (in that currency), rate_to_reporting (reporting currency per unit that day), revenue_reporting (in reporting_currency).';

grant select on analytics.daily_revenue_by_currency to pipeline_analyst;

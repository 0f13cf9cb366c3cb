-- Money: conversion of an amount to the reporting currency (core.settings) at the rate of a
-- UTC day (core.exchange_rates). Views convert when they are read, so a rate loaded late
-- corrects every figure of its days at once, with no rebuild. Security definer: the analyst
-- reads converted figures without reading the rate tables' schema.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- US dollars per unit of p_currency on p_day: that day's rate, else the latest earlier one,
-- else the earliest later one; null when the currency has no rate at all.
create function core.usd_per_unit(p_currency text, p_day date)
returns numeric
language sql
stable
parallel safe
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select coalesce(
        (
            select r.usd_per_unit from core.exchange_rates as r
            where r.currency = p_currency and r.day <= p_day
            order by r.day desc limit 1
        ),
        (
            select r.usd_per_unit from core.exchange_rates as r
            where r.currency = p_currency and r.day > p_day
            order by r.day limit 1
        )
    );
end;

-- The reporting currency (core.settings.reporting_currency).
create function core.reporting_currency()
returns text
language sql
stable
parallel safe
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select s.reporting_currency from core.settings as s;
end;

-- p_amount (in p_currency) in the reporting currency at p_day's rates, unrounded; null when
-- either currency has no rate.
create function core.to_reporting(p_amount numeric, p_currency text, p_day date)
returns numeric
language sql
stable
parallel safe
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select case
        when p_currency = core.reporting_currency() then p_amount
        else p_amount * core.usd_per_unit(p_currency, p_day)
            / core.usd_per_unit(core.reporting_currency(), p_day)
    end;
end;

revoke all on function core.usd_per_unit(text, date) from public;
revoke all on function core.reporting_currency() from public;
revoke all on function core.to_reporting(numeric, text, date) from public;
grant execute on function core.usd_per_unit(text, date) to pipeline_analyst;
grant execute on function core.reporting_currency() to pipeline_analyst;
grant execute on function core.to_reporting(numeric, text, date) to pipeline_analyst;

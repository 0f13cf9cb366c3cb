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

-- Sets the reporting currency (deno task migrate writes REPORTING_CURRENCY here). Refuses a
-- currency without any exchange rate: every figure would be NULL.
create function core.set_reporting_currency(p_currency text)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_currency text := upper(btrim(p_currency));
begin
    if v_currency !~ '^[A-Z]{3}$' then
        raise exception 'REPORTING_CURRENCY "%" is not a three-letter currency code', p_currency
            using hint = 'set it to an ISO 4217 code such as USD, EUR or GBP';
    end if;
    if not exists (select from core.exchange_rates as r where r.currency = v_currency) then
        raise exception 'REPORTING_CURRENCY "%" has no exchange rate in core.exchange_rates',
            v_currency
            using hint = 'load its rates first (deno task rates --file rates.csv) or use one of '
                || (select string_agg(distinct r.currency, ', ') from core.exchange_rates as r);
    end if;
    update core.settings set reporting_currency = v_currency, updated_at = now()
    where reporting_currency is distinct from v_currency;
    return v_currency;
end
$$;

-- Loads exchange rates, all or nothing: p_rows is a json array of
-- {line, currency, day, usd_per_unit} as text (a CSV's lines). Every bad row is reported with
-- its line and reason and then nothing is loaded; otherwise each (currency, day) is inserted
-- or replaced. Returns {loaded, inserted, updated, rejected: [{line, reason}]}. Figures of the
-- days a rate covers change at once (the views convert when read).
create function core.load_exchange_rates(p_rows jsonb, p_source text)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rejected jsonb;
    v_inserted bigint;
    v_total bigint;
begin
    drop table if exists pg_temp.rate_rows;
    create temp table rate_rows on commit drop as
    select
        (r ->> 'line')::bigint as line,
        upper(btrim(r ->> 'currency')) as currency,
        btrim(r ->> 'day') as day_text,
        btrim(r ->> 'usd_per_unit') as rate_text
    from jsonb_array_elements(p_rows) as r;

    with checked as (
        select
            t.line,
            case
                when coalesce(t.currency, '') = '' then 'currency is empty'
                when t.currency !~ '^[A-Z]{3}$' then
                    format('currency "%s" is not a three-letter code', t.currency)
                when coalesce(t.day_text, '') = '' then 'day is empty'
                when t.day_text !~ '^\d{4}-\d{2}-\d{2}$'
                    or not pg_input_is_valid(t.day_text, 'date') then
                    format('day "%s" is not a date YYYY-MM-DD', t.day_text)
                when coalesce(t.rate_text, '') = '' then 'usd_per_unit is empty'
                when t.rate_text !~ '^\d{1,10}(\.\d{1,10})?$' then
                    format('usd_per_unit "%s" is not a positive decimal number', t.rate_text)
                when t.rate_text::numeric <= 0 then 'usd_per_unit must be greater than 0'
                when t.currency = 'USD' and t.rate_text::numeric <> 1 then
                    'USD is the base: its usd_per_unit is always 1'
                when count(*) over (partition by t.currency, t.day_text) > 1 then
                    format('%s on %s appears more than once in the file', t.currency, t.day_text)
            end as reason
        from pg_temp.rate_rows as t
    )
    select coalesce(jsonb_agg(jsonb_build_object('line', line, 'reason', reason) order by line), '[]')
    into v_rejected
    from checked
    where reason is not null;

    if jsonb_array_length(v_rejected) > 0 then
        return jsonb_build_object('loaded', 0, 'inserted', 0, 'updated', 0, 'rejected', v_rejected);
    end if;

    with upserted as (
        insert into core.exchange_rates as e (currency, day, usd_per_unit, source, loaded_at)
        select t.currency, t.day_text::date, t.rate_text::numeric, p_source, now()
        from pg_temp.rate_rows as t
        on conflict (currency, day) do update
        set usd_per_unit = excluded.usd_per_unit,
            source = excluded.source,
            loaded_at = excluded.loaded_at
        returning (xmax = 0) as inserted
    )
    select count(*) filter (where inserted), count(*) into v_inserted, v_total from upserted;

    return jsonb_build_object(
        'loaded', v_total, 'inserted', v_inserted, 'updated', v_total - v_inserted,
        'rejected', '[]'::jsonb
    );
end
$$;

revoke all on function core.set_reporting_currency(text) from public;
revoke all on function core.load_exchange_rates(jsonb, text) from public;

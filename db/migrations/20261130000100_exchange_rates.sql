-- migrate:up
-- Money: every amount in core.events keeps the currency it was paid in; reports convert it to
-- one reporting currency at the rate of the event's UTC day (db/functions/core/money.sql).
set local role pipeline_owner;

-- Exchange rates as "how many US dollars one unit of the currency was worth that day". A day
-- without its own row uses the latest earlier rate (else the earliest later one). USD is 1.
create table core.exchange_rates (
    currency text not null check (currency ~ '^[A-Z]{3}$'),
    day date not null,
    usd_per_unit numeric(20, 10) not null check (usd_per_unit > 0),
    source text not null default 'manual',
    loaded_at timestamptz not null default now(),
    primary key (currency, day),
    check (currency <> 'USD' or usd_per_unit = 1)
);

-- Shipped defaults so that every accepted currency converts out of the box (approximate
-- reference rates of 2025-01-02); load real ones with deno task rates (docs/money.md).
insert into core.exchange_rates (currency, day, usd_per_unit, source) values
    ('USD', date '2000-01-01', 1, 'default'),
    ('EUR', date '2025-01-02', 1.0350, 'default'),
    ('GBP', date '2025-01-02', 1.2480, 'default');

-- Pipeline-wide settings the SQL needs (one row). reporting_currency: every revenue figure of
-- the analytics views is in it; migrate writes REPORTING_CURRENCY here.
create table core.settings (
    only_row boolean primary key default true check (only_row),
    reporting_currency text not null default 'USD' check (reporting_currency ~ '^[A-Z]{3}$'),
    updated_at timestamptz not null default now()
);
insert into core.settings (only_row) values (true);

reset role;

-- migrate:down
set local role pipeline_owner;
drop table if exists core.settings cascade;
drop table if exists core.exchange_rates cascade;
reset role;

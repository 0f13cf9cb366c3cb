-- The domains of the contract's enumerated columns (docs/contract.md section 1), written once:
-- the validation (check_stage.sql) reads them here. The CHECK constraints of core.events (a
-- migration) and the generator's constants (scripts/lib/common/contract.ts) cannot read them,
-- so db/domains_test.ts fails when either differs from this list.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The values a column may hold, in contract order; NULL for a column that is no enumeration.
create function ingest.domain(p_column text)
returns text[]
language sql
immutable
parallel safe
return case p_column
    when 'event_type' then array[
        'view', 'search', 'add_to_cart', 'remove_from_cart', 'wishlist', 'purchase']
    when 'category' then array[
        'electronics', 'clothing', 'home_garden', 'sports', 'books', 'beauty', 'toys', 'grocery']
    when 'currency' then array['USD', 'EUR', 'GBP']
    when 'device' then array['desktop', 'mobile', 'tablet']
    when 'traffic_source' then array['direct', 'search', 'social', 'email', 'ads', 'referral']
    when 'payment_method' then array[
        'card', 'paypal', 'apple_pay', 'google_pay', 'bank_transfer']
end;

revoke all on function ingest.domain(text) from public;
-- the analyst may read the lists: analytics.hourly_events zero-fills every event type with them
grant execute on function ingest.domain(text) to pipeline_analyst;

-- The reason codes of the data contract (docs/contract.md section 2), in contract order, and
-- the bit mask that stands for a set of them.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The reason codes in contract order; bit i-1 of a reason mask stands for codes[i].
create function ingest.reason_codes()
returns text[]
language sql
immutable
parallel safe
return array[
    'missing_event_id', 'invalid_event_id', 'missing_event_time', 'invalid_event_time',
    'future_event_time', 'too_old_event_time', 'missing_event_type', 'invalid_event_type',
    'missing_user_id', 'invalid_user_id', 'missing_session_id', 'invalid_session_id',
    'missing_product_id', 'invalid_product_id', 'invalid_category', 'missing_price',
    'invalid_price', 'negative_price', 'zero_price', 'extreme_price', 'invalid_quantity',
    'invalid_currency', 'invalid_device', 'invalid_traffic_source', 'invalid_payment_method',
    'invalid_search_query'
];

-- A reason mask as the list of codes, in contract order.
create function ingest.reasons_of(p_mask int)
returns text[]
language sql
immutable
parallel safe
return array(
    select c.code
    from unnest(ingest.reason_codes()) with ordinality as c (code, bit)
    where p_mask & (1 << (c.bit::int - 1)) <> 0
    order by c.bit
);

-- The reasons a dead letter row carries: a conflicting duplicate's alone, else its mask's.
create function ingest.dead_letter_reasons(p_conflict boolean, p_mask int)
returns text[]
language sql
immutable
parallel safe
return case
    when p_conflict then array['conflicting_duplicate']
    else ingest.reasons_of(p_mask)
end;

revoke all on function ingest.reason_codes() from public;
revoke all on function ingest.dead_letter_reasons(boolean, int) from public;
revoke all on function ingest.reasons_of(int) from public;

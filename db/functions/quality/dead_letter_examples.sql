-- Example rejected rows for the dashboard's data-quality drill-down.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The newest p_limit (1..100) dead-letter rows carrying reason p_reason, not yet replayed, with
-- the fields as they arrived, except what may hold personal data: the e-mail (only whether
-- there was one), the raw line and the raw bytes. Only pipeline_quality_reader may call it.
create function quality.dead_letter_examples(p_reason text, p_limit int default 20)
returns table (
    dead_letter_id bigint,
    source text,
    line_no bigint,
    created_at timestamptz,
    reasons text[],
    event_id text,
    event_time text,
    event_type text,
    user_id text,
    session_id text,
    product_id text,
    category text,
    price text,
    quantity text,
    currency text,
    device text,
    traffic_source text,
    has_email boolean
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select
        d.dead_letter_id, d.source, d.line_no, d.created_at, d.reasons, d.event_id, d.event_time,
        d.event_type, d.user_id, d.session_id, d.product_id, d.category, d.price, d.quantity,
        d.currency, d.device, d.traffic_source, d.user_email_sealed is not null
    from quality.dead_letter as d
    where p_reason = any (d.reasons) and d.replayed_at is null
    order by d.dead_letter_id desc
    limit greatest(1, least(coalesce(p_limit, 20), 100));
end;

revoke all on function quality.dead_letter_examples(text, int) from public;
grant execute on function quality.dead_letter_examples(text, int) to pipeline_quality_reader;

-- The rows of the lake's silver and bronze tables (docs/lake.md), one column per Iceberg
-- column: lake.silver_events (core.events typed, the e-mail as its keyed hash only) and
-- lake.bronze_dead_letter (the dead letter without any e-mail: the address itself is sealed in
-- PostgreSQL and the key never leaves it; e-mail-like text in the raw line is removed). deno
-- task export reads them through lake.export_query (db/functions/lake/export.sql), which adds
-- the schema registry's extension columns to silver. day is the UTC day of the partition.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists lake.silver_events;
create view lake.silver_events as
with events as (
    select * from core.events
),

final as (
    select
        (e.event_time at time zone 'UTC')::date as day,
        e.event_id,
        e.event_time,
        e.event_type,
        e.user_id,
        e.session_id,
        e.product_id,
        e.category,
        e.price,
        e.quantity,
        e.total_amount,
        e.currency,
        e.device,
        e.traffic_source,
        e.payment_method,
        e.search_query,
        encode(e.email_hash, 'hex') as email_hash,
        e.is_late,
        e.batch_id,
        e.ingested_at,
        core.visible_extra(e.extra) as extra
    from events as e
)

select * from final;

comment on view lake.silver_events is
'The lake''s silver.events rows: core.events typed, email_hash (hex of the keyed hash) instead of any e-mail, extra as analysts see it (core.visible_extra).';

drop view if exists lake.bronze_dead_letter;
create view lake.bronze_dead_letter as
with dead_letter as (
    select * from quality.dead_letter
),

final as (
    select
        (d.created_at at time zone 'UTC')::date as day,
        d.dead_letter_id,
        d.batch_id,
        d.source,
        d.line_no,
        d.reasons,
        regexp_replace(d.raw_line, '[^[:space:],;"''<>]+@[^[:space:],;"''<>]+', '[email removed]', 'g')
            as raw_line,
        d.event_id,
        d.event_time,
        d.event_type,
        d.user_id,
        d.session_id,
        d.product_id,
        d.category,
        d.price,
        d.quantity,
        d.currency,
        d.device,
        d.traffic_source,
        d.payment_method,
        d.search_query,
        d.user_email_sealed is not null as has_user_email,
        d.schema_version,
        core.visible_extra(d.extra) as extra,
        d.created_at,
        d.replayed_at,
        d.replay_count
    from dead_letter as d
)

select * from final;

comment on view lake.bronze_dead_letter is
'The lake''s bronze.dead_letter rows: the dead letter by its UTC day, without the e-mail (has_user_email says whether one was sent), e-mail-like text of raw_line replaced by [email removed], extra as analysts see it.';

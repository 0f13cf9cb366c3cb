-- analytics.data_quality: one row per UTC hour of ingestion (batch finished_at), from the first
-- to the last hour with batches or rejected files; hours between without either are zero-filled
-- (counts 0, validity_rate NULL: no rows checked is no rate, not a rate of 0; docs/metrics.md). Replays are reflected: the batches' metrics move rows out of invalid,
-- reasons follow the dead letter as it is now. Rejected files (unusable header) come from the
-- ledger: they have no batch and no rows.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.data_quality;
create view analytics.data_quality as
with hours as (
    select hour, batches, files, rows, valid, invalid, duplicates, late
    from analytics.rollup_quality_hourly
),

ledger as (
    select status, finished_at
    from ingest.files
),

reasons as (
    select hour, reason, rows
    from analytics.rollup_quality_reasons
),

rejected_per_hour as (
    select date_trunc('hour', finished_at, 'UTC') as hour, count(*) as rejected_files
    from ledger
    where status = 'rejected'
    group by 1
),

reasons_per_hour as (
    select
        hour,
        (array_agg(reason order by rows desc, reason))[1:3] as top_reasons,
        jsonb_object_agg(reason, rows) as reason_counts
    from reasons
    group by hour
),

active as (
    select hour from hours
    union
    select hour from rejected_per_hour
),

calendar as (
    select s.hour
    from (select min(hour) as first_hour, max(hour) as last_hour from active) as p
    cross join lateral generate_series(p.first_hour, p.last_hour, interval '1 hour') as s (hour)
),

final as (
    select
        c.hour,
        coalesce(h.files, 0) as files,
        coalesce(x.rejected_files, 0) as rejected_files,
        coalesce(h.batches, 0) as batches,
        coalesce(h.rows, 0) as rows,
        coalesce(h.valid, 0) as valid,
        coalesce(h.invalid, 0) as invalid,
        coalesce(h.duplicates, 0) as duplicates,
        coalesce(h.late, 0) as late,
        round(h.valid::numeric / nullif(h.valid + h.invalid, 0), 6) as validity_rate,
        coalesce(r.top_reasons, '{}') as top_reasons,
        coalesce(r.reason_counts, '{}') as reason_counts
    from calendar as c
    left join hours as h on h.hour = c.hour
    left join rejected_per_hour as x on x.hour = c.hour
    left join reasons_per_hour as r on r.hour = c.hour
)

select * from final;

comment on view analytics.data_quality is
'Per UTC hour of ingestion (zero-filled between the first and the last hour with batches or rejected files; validity_rate NULL in an hour without checked rows): files (loaded), rejected_files (refused whole for their header), batches (files + HTTP), rows, valid, invalid, duplicates, late, validity_rate = valid/(valid+invalid), top_reasons (3 most frequent reason codes), reason_counts (all codes).';

grant select on analytics.data_quality to pipeline_analyst;

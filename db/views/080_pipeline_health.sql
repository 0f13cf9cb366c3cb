-- analytics.pipeline_health: always exactly one row describing the pipeline right now.
-- files_waiting comes from analytics.inbox_status, which the ingester reports (NULL before).
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.pipeline_health;
create view analytics.pipeline_health as
with batches as not materialized (
    select batch_id, source_kind, source_name, rows, valid, invalid, started_at, finished_at
    from quality.batch_metrics
),

alerts as (
    select created_at, resolved_at
    from quality.alerts
),

inbox as (
    select files_waiting, reported_at
    from analytics.inbox_status
),

last_file as (
    select source_name, finished_at
    from batches
    where source_kind = 'file'
    order by finished_at desc
    limit 1
),

last_batch as (
    select batch_id, source_kind, started_at, finished_at
    from batches
    order by finished_at desc
    limit 1
),

last_hour as (
    select
        coalesce(sum(rows) filter (where finished_at > now() - interval '1 minute'), 0)
            as rows_1m,
        coalesce(sum(rows), 0) as rows_1h,
        coalesce(sum(valid), 0) as valid_1h,
        coalesce(sum(invalid), 0) as invalid_1h
    from batches
    where finished_at > now() - interval '1 hour'
),

-- HTTP batches with deferred analytics (HTTP_ANALYTICS=deferred) not yet in the rollups
analytics_queue as (
    select count(*) as queued_batches, min(queued_at) as oldest_queued_at
    from ingest.deferred_batches
),

-- Kafka consumers (docs/kafka.md): messages in Kafka not yet loaded, over every partition
kafka as (
    select
        count(*) as partitions,
        sum(greatest(coalesce(high_watermark, 0) - coalesce(next_offset, 0), 0)) as lag,
        max(updated_at) as updated_at
    from ingest.kafka_offsets
),

open_alerts as (
    select count(*) as open_alerts, max(created_at) as last_alert_at
    from alerts
    where resolved_at is null
),

final as (
    select
        now() as checked_at,
        f.source_name as last_file,
        f.finished_at as last_file_at,
        round(extract(epoch from now() - f.finished_at), 1) as last_file_age_seconds,
        i.files_waiting,
        i.reported_at as files_waiting_reported_at,
        b.batch_id as last_batch_id,
        b.source_kind as last_batch_kind,
        round(extract(epoch from b.finished_at - b.started_at), 3) as last_batch_seconds,
        round(h.rows_1m / 60.0, 1) as rows_per_second_1m,
        round(h.rows_1h / 3600.0, 1) as rows_per_second_1h,
        round(h.valid_1h::numeric / nullif(h.valid_1h + h.invalid_1h, 0), 6) as validity_rate_1h,
        a.open_alerts,
        a.last_alert_at,
        q.queued_batches as analytics_queued_batches,
        round(extract(epoch from now() - q.oldest_queued_at), 1) as analytics_queue_age_seconds,
        k.partitions as kafka_partitions,
        k.lag as kafka_lag,
        k.updated_at as kafka_lag_updated_at
    from last_hour as h
    cross join open_alerts as a
    cross join analytics_queue as q
    cross join kafka as k
    left join last_file as f on true
    left join last_batch as b on true
    left join inbox as i on true
)

select * from final;

comment on view analytics.pipeline_health is
'One row: last committed file and its age, files waiting in the inbox (as last reported by the ingester, NULL if never), last batch duration, rows/s over the last minute and hour, validity over the last hour, open alerts, HTTP batches whose deferred analytics are not in the rollups yet and the age of the oldest, Kafka partitions consumed and their total lag (messages not yet loaded).';

grant select on analytics.pipeline_health to pipeline_analyst;

-- migrate:up
-- Kafka as a third source (docs/kafka.md): batches of kind 'kafka', and the consumer offsets,
-- which live here and nowhere else. A Kafka batch and the offsets it advances commit in one
-- transaction (ingest.kafka_commit), so a message is loaded exactly once.
set local role pipeline_owner;

alter table quality.batch_metrics drop constraint batch_metrics_source_kind_check;
alter table quality.batch_metrics add constraint batch_metrics_source_kind_check
    check (source_kind in ('file', 'http', 'replay', 'kafka'));

-- One row per consumer group and partition. next_offset is the offset of the first message not
-- yet loaded (NULL: nothing loaded yet, start at the earliest retained message). high_watermark
-- is the partition's end as the consumer last saw it, so lag = high_watermark - next_offset.
create table ingest.kafka_offsets (
    consumer_group text not null check (consumer_group <> ''),
    topic text not null check (topic <> ''),
    partition int not null check (partition >= 0),
    next_offset bigint check (next_offset >= 0),
    high_watermark bigint check (high_watermark >= 0),
    batches bigint not null default 0,
    messages bigint not null default 0,
    updated_at timestamptz not null default now(),
    primary key (consumer_group, topic, partition)
);

comment on table ingest.kafka_offsets is
'Kafka consumer positions, committed in the same transaction as the rows they cover (never in Kafka).';

reset role;

-- migrate:down
set local role pipeline_owner;
drop table if exists ingest.kafka_offsets;
delete from quality.batch_metrics where source_kind = 'kafka';
alter table quality.batch_metrics drop constraint batch_metrics_source_kind_check;
alter table quality.batch_metrics add constraint batch_metrics_source_kind_check
    check (source_kind in ('file', 'http', 'replay'));
reset role;

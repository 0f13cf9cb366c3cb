-- The Kafka source's positions (docs/kafka.md): offsets live in ingest.kafka_offsets and move
-- only in the transaction that loads the messages they cover.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The stored positions of a group's partitions, for the consumer to seek to on assignment.
-- p_partitions: [{"topic": "...", "partition": 0}, ...]. next_offset NULL: nothing loaded yet.
create function ingest.kafka_positions(p_group text, p_partitions jsonb)
returns table (topic text, partition int, next_offset bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select p.topic, p.partition, o.next_offset
    from jsonb_to_recordset(p_partitions) as p (topic text, partition int)
    left join ingest.kafka_offsets as o
        on o.consumer_group = p_group and o.topic = p.topic and o.partition = p.partition
    order by p.topic, p.partition;
end;

-- Locks the group's rows for these partitions until the caller's transaction ends and returns
-- their positions: a second consumer loading the same partition (during a rebalance, or a
-- zombie) waits here, then sees the advanced position and skips what was loaded meanwhile.
create function ingest.kafka_lock(p_group text, p_partitions jsonb)
returns table (topic text, partition int, next_offset bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if coalesce(p_group, '') = '' then
        raise exception 'consumer group is empty' using errcode = '22023',
            hint = 'pass --group (or KAFKA_GROUP)';
    end if;
    -- the batch never waits for good on another's locks (a consumer stuck mid-batch): after a
    -- minute it fails (55P03) and the consumer retries it
    perform set_config('lock_timeout', '60s', true);
    insert into ingest.kafka_offsets as o (consumer_group, topic, partition)
    select p_group, p.topic, p.partition
    from jsonb_to_recordset(p_partitions) as p (topic text, partition int)
    order by p.topic, p.partition
    on conflict do nothing;
    return query
    select o.topic, o.partition, o.next_offset
    from ingest.kafka_offsets as o
    join jsonb_to_recordset(p_partitions) as p (topic text, partition int)
        on o.topic = p.topic and o.partition = p.partition
    where o.consumer_group = p_group
    order by o.topic, o.partition
    for update of o;
end
$$;

-- Advances the positions of the batch just processed in this transaction and names each dead
-- letter row by the message it came from (topic/partition@offset).
-- p_positions: [{"topic", "partition", "from", "next", "high_watermark", "messages"}], where
-- from is the first offset of the batch (must be the stored position, or the stored position
-- must be NULL) and next the offset after its last message.
-- p_lines / p_sources: the batch's CSV line numbers and the message source of each.
create function ingest.kafka_commit(
    p_group text,
    p_batch_id bigint,
    p_positions jsonb,
    p_lines bigint[],
    p_sources text[]
)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_bad record;
begin
    select p.topic, p.partition, p."from", o.next_offset into v_bad
    from jsonb_to_recordset(p_positions) as p (topic text, partition int, "from" bigint)
    left join ingest.kafka_offsets as o
        on o.consumer_group = p_group and o.topic = p.topic and o.partition = p.partition
    where o.consumer_group is null or (o.next_offset is not null and o.next_offset > p."from")
    limit 1;
    if found then
        raise exception 'batch % would load %/% from offset % but offsets up to % are already loaded by group "%"',
            p_batch_id, v_bad.topic, v_bad.partition, v_bad."from", v_bad.next_offset - 1, p_group
            using errcode = '40001',
            hint = 'lock the partitions with ingest.kafka_lock first and skip what is loaded';
    end if;

    update ingest.kafka_offsets as o
    set next_offset = p.next,
        high_watermark = greatest(p.high_watermark, p.next),
        batches = o.batches + 1,
        messages = o.messages + p.messages,
        updated_at = clock_timestamp()
    from jsonb_to_recordset(p_positions) as p (
        topic text, partition int, "from" bigint, next bigint, high_watermark bigint,
        messages bigint
    )
    where o.consumer_group = p_group and o.topic = p.topic and o.partition = p.partition;

    if p_batch_id is not null then
        update quality.dead_letter as d
        set source = s.source
        from unnest(p_lines, p_sources) as s (line_no, source)
        where d.batch_id = p_batch_id and d.line_no = s.line_no;
    end if;
end
$$;

-- The end of the partitions as the consumer last saw them (for the lag), outside any batch.
-- A partition never loaded yet gets its row here, so its lag shows before its first batch.
create function ingest.kafka_report_watermarks(p_group text, p_watermarks jsonb)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    insert into ingest.kafka_offsets as o (consumer_group, topic, partition, high_watermark)
    select p_group, w.topic, w.partition, w.high_watermark
    from jsonb_to_recordset(p_watermarks) as w (topic text, partition int, high_watermark bigint)
    order by w.topic, w.partition
    on conflict (consumer_group, topic, partition) do update
    set high_watermark = excluded.high_watermark, updated_at = clock_timestamp();
end;

-- Lag per partition: messages in Kafka not yet loaded (NULL position: all retained ones count).
create function ingest.kafka_lag()
returns table (
    consumer_group text, topic text, partition int, next_offset bigint, high_watermark bigint,
    lag bigint, batches bigint, messages bigint, updated_at timestamptz
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select o.consumer_group, o.topic, o.partition, o.next_offset, o.high_watermark,
        greatest(coalesce(o.high_watermark, 0) - coalesce(o.next_offset, 0), 0),
        o.batches, o.messages, o.updated_at
    from ingest.kafka_offsets as o
    order by o.consumer_group, o.topic, o.partition;
end;

revoke all on function ingest.kafka_positions(text, jsonb) from public;
revoke all on function ingest.kafka_lock(text, jsonb) from public;
revoke all on function ingest.kafka_commit(text, bigint, jsonb, bigint[], text[]) from public;
revoke all on function ingest.kafka_report_watermarks(text, jsonb) from public;
revoke all on function ingest.kafka_lag() from public;
grant execute on function ingest.kafka_positions(text, jsonb) to pipeline_ingest;
grant execute on function ingest.kafka_lock(text, jsonb) to pipeline_ingest;
grant execute on function ingest.kafka_commit(text, bigint, jsonb, bigint[], text[]) to pipeline_ingest;
grant execute on function ingest.kafka_report_watermarks(text, jsonb) to pipeline_ingest;
grant execute on function ingest.kafka_lag() to pipeline_ingest, pipeline_analyst;

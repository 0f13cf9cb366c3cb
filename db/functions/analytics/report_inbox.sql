-- What the file ingester saw waiting in its inbox.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Records how many files the ingester saw waiting in its inbox (shown by pipeline_health).
create function analytics.report_inbox(p_files_waiting int)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    insert into analytics.inbox_status (only_row, files_waiting, reported_at)
    values (true, p_files_waiting, clock_timestamp())
    on conflict (only_row) do update
    set files_waiting = excluded.files_waiting, reported_at = excluded.reported_at;
end;

revoke all on function analytics.report_inbox(int) from public;
grant execute on function analytics.report_inbox(int) to pipeline_ingest;

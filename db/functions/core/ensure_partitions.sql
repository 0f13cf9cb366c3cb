-- Monthly partitions of core.events, created on demand by every batch.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Creates the monthly partitions of core.events covering [p_from, p_to]. An advisory lock
-- makes concurrent ingesters create each partition once.
create function core.ensure_partitions(p_from timestamptz, p_to timestamptz)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_month timestamptz;
    v_name text;
begin
    if p_from is null then
        return;
    end if;
    v_month := date_trunc('month', p_from at time zone 'UTC') at time zone 'UTC';
    while v_month <= p_to loop
        v_name := 'events_' || to_char(v_month at time zone 'UTC', 'YYYY_MM');
        if to_regclass('core.' || v_name) is null then
            perform pg_advisory_xact_lock(hashtext('core.events partitions'));
            -- another batch may have created it while we waited for the lock; our catalog
            -- snapshot may not show it yet, so "already exists" is success too
            begin
                execute format(
                    'create table if not exists core.%I partition of core.events for values from (%L) to (%L)',
                    v_name, v_month, (v_month at time zone 'UTC' + interval '1 month') at time zone 'UTC'
                );
            exception when duplicate_table then
                null;
            end;
        end if;
        v_month := (v_month at time zone 'UTC' + interval '1 month') at time zone 'UTC';
    end loop;
end
$$;

revoke all on function core.ensure_partitions(timestamptz, timestamptz) from public;

-- migrate:up
-- A role for the dashboard's data-quality drill-down: it may call
-- quality.dead_letter_examples() (db/functions/quality/dead_letter_examples.sql), which shows
-- example rejected rows of a reason code without their e-mail, raw line or raw bytes. It reads
-- no table itself; the analyst role does not get it.
do $$
begin
    if not exists (select from pg_roles where rolname = 'pipeline_quality_reader') then
        create role pipeline_quality_reader nologin;
    end if;
end
$$;

-- the migrating login (and so the collector, which connects as it) may act as the role
grant pipeline_quality_reader to current_user;
grant usage on schema quality to pipeline_quality_reader;

-- migrate:down
-- the role is cluster-wide (other databases may use it): only this database's grant goes
revoke usage on schema quality from pipeline_quality_reader;

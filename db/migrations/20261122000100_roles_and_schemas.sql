-- migrate:up
-- Roles are cluster-wide: create them only when missing, so every database can run this.
do $$
begin
    if not exists (select from pg_roles where rolname = 'pipeline_owner') then
        create role pipeline_owner nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'pipeline_ingest') then
        create role pipeline_ingest nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'pipeline_analyst') then
        create role pipeline_analyst nologin;
    end if;
end
$$;

-- the migrating login acts as each role (SET ROLE) and owns nothing itself
grant pipeline_owner, pipeline_ingest, pipeline_analyst to current_user;
do $$
begin
    execute format('grant create, temporary on database %I to pipeline_owner', current_database());
end
$$;

create extension if not exists pgcrypto with schema public;

create schema ingest authorization pipeline_owner;
create schema core authorization pipeline_owner;
create schema quality authorization pipeline_owner;
create schema analytics authorization pipeline_owner;

revoke all on schema public from pipeline_ingest, pipeline_analyst;
grant usage on schema ingest to pipeline_ingest;
grant usage on schema analytics to pipeline_analyst;

-- migrate:down
drop schema if exists analytics cascade;
drop schema if exists quality cascade;
drop schema if exists core cascade;
drop schema if exists ingest cascade;
-- roles may still own objects in other databases of the cluster: keep them then
do $$
declare
    r text;
begin
    foreach r in array array['pipeline_analyst', 'pipeline_ingest', 'pipeline_owner'] loop
        begin
            execute format('drop owned by %I', r);
            execute format('drop role if exists %I', r);
        exception when dependent_objects_still_exist or object_in_use then
            null;
        end;
    end loop;
end
$$;

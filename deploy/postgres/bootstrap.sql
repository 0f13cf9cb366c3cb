-- One-time setup by a superuser (or your cloud's admin user) for a PostgreSQL server this
-- project did not start. After it, the login `pipeline_migrator` (not a superuser) runs every
-- migration: `DATABASE_URL=postgres://pipeline_migrator:...@host/ecommerce deno task migrate`.
-- Replace the password; rename the login if you like (here and in DATABASE_URL).
-- See docs/operations.md, "Minimum privileges".
--
--   psql "postgres://admin@host/postgres" -f deploy/postgres/bootstrap.sql

do $$
begin
    if not exists (select from pg_roles where rolname = 'pipeline_migrator') then
        -- CREATEROLE: the migrations create the pipeline_* roles themselves
        create role pipeline_migrator login createrole password 'change-me';
    end if;
    -- roles are cluster-wide: when another database of this server already created them, the
    -- migrating login needs admin rights on them to grant them to itself
    if not exists (select from pg_roles where rolname = 'pipeline_owner') then
        create role pipeline_owner nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'pipeline_ingest') then
        create role pipeline_ingest nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'pipeline_analyst') then
        create role pipeline_analyst nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'pipeline_quality_reader') then
        create role pipeline_quality_reader nologin;
    end if;
end
$$;
grant pipeline_owner, pipeline_ingest, pipeline_analyst, pipeline_quality_reader to pipeline_migrator
with admin option;

-- Then the database, owned by the migrating login (a statement of its own: it cannot run in a
-- transaction): it may then create the pgcrypto extension (trusted since PostgreSQL 13), its
-- schemas and the grants on the database.
--
--   create database ecommerce owner pipeline_migrator;

-- migrate:up
-- Citus (distributed mode, docs/citus.md) creates and drops the functions of db/functions on
-- every worker, and runs the security definer functions' queries on the shards, by connecting
-- to the workers as the role that runs them: pipeline_owner. A NOLOGIN role cannot connect
-- ("role pipeline_owner is not permitted to log in"), so where the citus extension is
-- installed the owner may log in. Its password (set by the operator on the coordinator, Citus
-- propagates it) is what the coordinator presents to the workers (pg_dist_authinfo or the
-- server's .pgpass). pipeline_ingest and pipeline_analyst stay NOLOGIN: nothing they may do
-- changes. A single node is left exactly as it was.
do $$
begin
    if exists (select from pg_extension where extname = 'citus') then
        alter role pipeline_owner login;
    end if;
end
$$;

-- migrate:down
do $$
begin
    if exists (select from pg_extension where extname = 'citus') then
        alter role pipeline_owner nologin;
    end if;
end
$$;

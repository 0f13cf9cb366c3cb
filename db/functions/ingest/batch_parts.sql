-- Per-request outcomes of a group-committed HTTP batch.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The HTTP collector may stage several requests as one batch (group commit: one transaction,
-- one validation pass). Request i's lines are staged as line_no = i * p_part_size + its own
-- line. Called after ingest.process_batch, in the same transaction (pg_temp.checked and
-- pg_temp.rejected still hold the batch), this splits the batch's outcome by request:
-- staged rows, accepted, duplicates, late, validity rate and the first p_limit dead-lettered
-- lines with their reasons (malformed lines included; lines as the request numbered them).
create function ingest.batch_parts(
    p_batch_id bigint, p_part_size bigint, p_parts int, p_limit int default 1000
)
returns table (
    part int, staged bigint, valid bigint, duplicates bigint, invalid bigint, late bigint,
    validity_rate numeric, invalid_rows jsonb
)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
    return query
    with outcome as (
        select
            (c.line_no / p_part_size)::int as p,
            count(*) as staged,
            count(*) filter (where c.is_valid and r.line_no is null) as valid,
            count(*) filter (where r.is_conflict = false) as duplicates,
            count(*) filter (where c.is_valid and r.line_no is null and c.is_late) as late
        from pg_temp.checked as c
        left join pg_temp.rejected as r
            on r.line_no = c.line_no and r.src_batch_id = c.src_batch_id
        group by 1
    ),

    dead as (
        select
            (d.line_no / p_part_size)::int as p,
            count(*) as n_invalid,
            jsonb_agg(
                jsonb_build_object('line_no', d.line_no % p_part_size, 'reasons', d.reasons)
                order by d.line_no
            ) filter (where d.n <= p_limit) as rows
        from (
            select x.line_no, x.reasons,
                row_number() over (partition by x.line_no / p_part_size order by x.line_no) as n
            from quality.dead_letter as x
            where x.batch_id = p_batch_id
        ) as d
        group by 1
    )

    select
        g.i,
        coalesce(o.staged, 0),
        coalesce(o.valid, 0),
        coalesce(o.duplicates, 0),
        coalesce(d.n_invalid, 0),
        coalesce(o.late, 0),
        case when coalesce(o.valid, 0) + coalesce(d.n_invalid, 0) > 0
            then round(coalesce(o.valid, 0)::numeric
                / (coalesce(o.valid, 0) + coalesce(d.n_invalid, 0)), 6)
        end,
        coalesce(d.rows, '[]')
    from generate_series(0, p_parts - 1) as g (i)
    left join outcome as o on o.p = g.i
    left join dead as d on d.p = g.i
    order by g.i;
end
$$;

revoke all on function ingest.batch_parts(bigint, bigint, int, int) from public;
grant execute on function ingest.batch_parts(bigint, bigint, int, int) to pipeline_ingest;

-- migrate:up
-- This migration created the loading procedures (open_batch, check_stage, process_batch,
-- replay, ...). Functions are behaviour, not state: they now live in db/functions/, one
-- concern per file, applied after the migrations on every migrate (db/functions/README.md).
-- The file stays so that the migration history of existing databases is unchanged.
select 1;

-- migrate:down
select 1;

-- migrate:up
-- Emails in the dead letter are stored sealed (pgcrypto, AES-256, key below), never in clear:
-- only pipeline_owner can read the key, so only its functions (core.unseal_email, used by
-- replay) can reverse them. Existing rows are sealed here.
set local role pipeline_owner;

create table core.dead_letter_key (
    only_row boolean primary key default true check (only_row),
    key text not null check (length(key) = 64)
);
insert into core.dead_letter_key (key) values (encode(public.gen_random_bytes(32), 'hex'));
revoke all on table core.dead_letter_key from public;

alter table quality.dead_letter add column user_email_sealed bytea;
update quality.dead_letter
set user_email_sealed = public.pgp_sym_encrypt(
    user_email, (select k.key from core.dead_letter_key as k), 'cipher-algo=aes256, s2k-mode=1'
)
where user_email is not null;
alter table quality.dead_letter drop column user_email;

reset role;

-- migrate:down
set local role pipeline_owner;
alter table quality.dead_letter add column user_email text;
update quality.dead_letter
set user_email = public.pgp_sym_decrypt(
    user_email_sealed, (select k.key from core.dead_letter_key as k)
)
where user_email_sealed is not null;
-- cascade: functions in db/functions whose SQL bodies read it (quality.dead_letter_examples)
alter table quality.dead_letter drop column user_email_sealed cascade;
-- cascade: core.seal_email and core.unseal_email (db/functions) read it; migrate re-creates them
drop table core.dead_letter_key cascade;
reset role;

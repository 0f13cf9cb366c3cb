-- Sealing emails of dead-lettered rows (core.dead_letter_key: readable by pipeline_owner only).
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The email sealed with the dead letter key (AES-256 through pgcrypto); null stays null.
create function core.seal_email(p_email text)
returns bytea
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select case when p_email is not null then
        public.pgp_sym_encrypt(p_email, k.key, 'cipher-algo=aes256, s2k-mode=1')
    end
    from core.dead_letter_key as k;
end;

-- The email back from its sealed form (replay re-validates it); null stays null.
create function core.unseal_email(p_sealed bytea)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select case when p_sealed is not null then public.pgp_sym_decrypt(p_sealed, k.key) end
    from core.dead_letter_key as k;
end;

revoke all on function core.seal_email(text) from public;
revoke all on function core.unseal_email(bytea) from public;

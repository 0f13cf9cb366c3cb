#!/bin/sh
# Runs once when the docker volume is initialised: load the shared bulk-ingest settings.
set -e
echo "include '/etc/postgresql/pipeline.conf'" >> "$PGDATA/postgresql.conf"

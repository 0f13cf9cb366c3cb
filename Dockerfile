# The pipeline's scripts (ingest, serve, migrate, maintain, replay, report) as one image, on the
# official Deno image, running as its non-root user `deno` (uid 1993). PostgreSQL is not in it:
# point DATABASE_URL at yours (docs/deployment.md).
#
#   docker build -t ecommerce-pipeline .
#   docker run --rm -e DATABASE_URL=... ecommerce-pipeline scripts/migrate.ts
#   docker run -d -e DATABASE_URL=... -v /srv/pipeline:/data ecommerce-pipeline scripts/ingest.ts
ARG DENO_VERSION=2.9.6
ARG DBMATE_VERSION=2.36.0

FROM ghcr.io/amacneil/dbmate:${DBMATE_VERSION} AS dbmate

FROM denoland/deno:${DENO_VERSION}
COPY --from=dbmate /usr/local/bin/dbmate /usr/local/bin/dbmate
WORKDIR /app
COPY deno.json deno.lock ./
COPY db/ db/
COPY scripts/ scripts/
RUN mkdir -p /data && chown deno:deno /data
USER deno
# every dependency is fetched at build time; the container needs no registry at run time
RUN deno cache scripts/ingest.ts scripts/serve.ts scripts/migrate.ts scripts/maintain.ts \
    scripts/replay.ts scripts/report.ts scripts/refresh.ts scripts/generate.ts
ENV DATA_DIR=/data \
    LOG_DIR=/data/logs \
    SERVE_HOST=0.0.0.0 \
    INGEST_METRICS_HOST=0.0.0.0
VOLUME ["/data"]
EXPOSE 8080 9464
# deno itself is PID 1 and handles SIGTERM: serve drains its requests, ingest finishes the
# file in hand (both exit 0); give them time (docker stop -t 60, stop_grace_period: 60s)
STOPSIGNAL SIGTERM
ENTRYPOINT ["deno", "run", "--allow-all", "--cached-only"]
CMD ["scripts/serve.ts"]

"""The lake writer behind `deno task export` (scripts/export.ts runs it; docs/lake.md).

Moves bytes only: PostgreSQL says which days of which tables are to export and gives their
rows and checksums (lake.pending, lake.export_query, db/functions/lake/export.sql); this writes
them to Apache Iceberg tables with PyIceberg (SQL catalog in the same database, schema
lake_catalog) and records each committed snapshot in the ledger (lake.record_exports).

Exactly once: every day is written by overwriting its partition (one catalog commit per chunk
of days), and the ledger row follows the commit. A crash before the commit leaves the previous
snapshot (and unreferenced data files); a crash after it leaves the new snapshot without its
ledger rows, so the next run overwrites the same days again: one copy either way.

Configuration comes from the environment (scripts/export.ts validates it): DATABASE_URL,
LAKE_WAREHOUSE (a directory path or file:// / s3:// URI), LAKE_S3_ENDPOINT,
LAKE_S3_ACCESS_KEY_ID, LAKE_S3_SECRET_ACCESS_KEY, LAKE_S3_REGION, LAKE_CHUNK_ROWS, and the
arguments --now ISO, --table NAME.
"""

import argparse
import io
import json
import os
import re
import signal
import sys
import time
import warnings
from urllib.parse import quote, unquote, urlsplit

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import In

# an overwrite of days not written before deletes nothing: PyIceberg warns, it is expected
warnings.filterwarnings("ignore", message="Delete operation did not match any records")

LIST_SEPARATOR = "\x1f"  # lake.export_query's csv form joins list items with chr(31)


def crash_point(stage: str) -> None:
    """Test-only: with PIPELINE_CRASH_AT=<stage> the process kills itself (SIGKILL) there."""
    if os.environ.get("PIPELINE_CRASH_AT") == stage:
        print(f'crash point "{stage}" reached: kill -9 of itself', file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def arrow_type(lake_type: str) -> pa.DataType:
    if lake_type.startswith("decimal("):
        precision, scale = lake_type[len("decimal(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    types = {
        "string": pa.string(),
        "int": pa.int32(),
        "long": pa.int64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "list<string>": pa.list_(pa.string()),
    }
    if lake_type not in types:
        raise ValueError(f'Unknown lake column type "{lake_type}" from lake.columns')
    return types[lake_type]


def catalog_for(url: str, warehouse: str) -> SqlCatalog:
    parts = urlsplit(url)
    user = quote(unquote(parts.username or "postgres"), safe="")
    password = quote(unquote(parts.password or ""), safe="")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    database = parts.path.lstrip("/")
    props = {
        "uri": f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{database}"
        "?options=-csearch_path%3Dlake_catalog",
        "warehouse": warehouse,
    }
    if os.environ.get("LAKE_S3_ENDPOINT"):
        props.update({
            "s3.endpoint": os.environ["LAKE_S3_ENDPOINT"],
            "s3.access-key-id": os.environ.get("LAKE_S3_ACCESS_KEY_ID", ""),
            "s3.secret-access-key": os.environ.get("LAKE_S3_SECRET_ACCESS_KEY", ""),
            "s3.region": os.environ.get("LAKE_S3_REGION", "us-east-1"),
        })
    return SqlCatalog("lake", **props)


def read_rows(cur, table: str, columns, days) -> pa.Table:
    """The rows of `days` as PostgreSQL gives them (COPY ... csv), typed as the Iceberg table."""
    cur.execute(
        "select lake.export_query(%s, %s::date, (%s::date + 1), %s::date[], 'csv')",
        (table, min(days), max(days), days),
    )
    (query,) = cur.fetchone()
    buf = io.BytesIO()
    cur.copy_expert(f"copy ({query}) to stdout with (format csv)", buf)
    buf.seek(0)
    names = [c[0] for c in columns]
    csv_types = {}
    for name, lake_type in columns:
        if lake_type == "timestamptz":
            csv_types[name] = pa.timestamp("us")
        elif lake_type == "list<string>":
            csv_types[name] = pa.string()
        else:
            csv_types[name] = arrow_type(lake_type)
    data = pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=names, block_size=16 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types=csv_types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    arrays = []
    for name, lake_type in columns:
        col = data.column(name)
        if lake_type == "timestamptz":
            col = col.cast(pa.timestamp("us", tz="UTC"))
        elif lake_type == "list<string>":
            col = pc.split_pattern(col, LIST_SEPARATOR)
        arrays.append(col)
    schema = pa.schema([pa.field(n, arrow_type(t), nullable=True) for n, t in columns])
    return pa.Table.from_arrays(arrays, schema=schema)


def open_table(catalog: SqlCatalog, layer: str, table: str, schema: pa.Schema):
    """The Iceberg table layer.table, created (partitioned by day) or evolved to `schema`:
    columns PostgreSQL added (a schema registry version, a new view column) are added."""
    try:
        catalog.create_namespace(layer)
    except NamespaceAlreadyExistsError:
        pass
    ident = (layer, table)
    try:
        tbl = catalog.load_table(ident)
    except NoSuchTableError:
        with catalog.create_table_transaction(ident, schema=schema) as tx:
            with tx.update_spec() as spec:
                spec.add_identity("day")
        return catalog.load_table(ident), []
    have = {f.name for f in tbl.schema().fields}
    added = [f.name for f in schema if f.name not in have]
    if added:
        with tbl.update_schema() as update:
            update.union_by_name(schema)
        tbl = catalog.load_table(ident)
    return tbl, added


def chunks(days, limit: int):
    """Consecutive groups of (day, rows, checksum) of at most `limit` rows (a bigger day alone)."""
    group, rows = [], 0
    for d in days:
        if group and rows + d[1] > limit:
            yield group
            group, rows = [], 0
        group.append(d)
        rows += d[1]
    if group:
        yield group


def main() -> int:
    parser = argparse.ArgumentParser(prog="lake export")
    parser.add_argument("--now")
    parser.add_argument("--table")
    parser.add_argument("--files", help="print the data files of layer.table's current snapshot")
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    warehouse = os.environ["LAKE_WAREHOUSE"]
    if args.files:
        # for readers without Iceberg support (DuckDB without its iceberg extension): exactly
        # the Parquet files of the current snapshot, never those of overwritten days
        tbl = catalog_for(url, warehouse).load_table(tuple(args.files.split(".", 1)))
        files = [t.file.file_path for t in tbl.scan().plan_files()]
        print(json.dumps(sorted(f.removeprefix("file://") for f in files)), flush=True)
        return 0
    if not args.now:
        parser.error("--now is required")
    limit = int(os.environ.get("LAKE_CHUNK_ROWS", "1000000"))
    started = time.time()

    ledger = psycopg2.connect(url, application_name="lake export (ledger)")
    ledger.autocommit = True
    with ledger.cursor() as cur:
        cur.execute("select pg_try_advisory_lock(hashtextextended('lake.export', 0))")
        if not cur.fetchone()[0]:
            print("error: another deno task export is running against this database: "
                  "wait for it to finish", file=sys.stderr)
            return 3
    ledger.autocommit = False

    # One snapshot of PostgreSQL for the whole run: the checksums lake.pending gives are those
    # of the rows read after it.
    reader = psycopg2.connect(url, application_name="lake export (reader)")
    reader.set_session(isolation_level="REPEATABLE READ", readonly=True)
    catalog = catalog_for(url, warehouse)
    result = {"warehouse": warehouse, "tables": {}, "rows": 0, "days": 0}
    with reader.cursor() as cur:
        cur.execute("set timezone = 'UTC'")
        cur.execute(
            "select table_name, layer, day::text, row_count, checksum::text "
            "from lake.pending(%s::timestamptz, %s)",
            (args.now, args.table),
        )
        pending = {}
        for table, layer, day, rows, checksum in cur.fetchall():
            pending.setdefault((layer, table), []).append((day, rows, checksum))
        for (layer, table), days in pending.items():
            cur.execute(
                "select column_name, lake_type from lake.columns(%s) order by col_position",
                (table,),
            )
            columns = cur.fetchall()
            schema = pa.schema([pa.field(n, arrow_type(t), nullable=True) for n, t in columns])
            tbl, added = open_table(catalog, layer, table, schema)
            done = {"days": 0, "rows": 0, "snapshots": [], "columns_added": added}
            for group in chunks(days, limit):
                day_list = [d[0] for d in group]
                data = read_rows(cur, table, columns, day_list)
                expected = sum(d[1] for d in group)
                if data.num_rows != expected:
                    raise RuntimeError(
                        f"{layer}.{table}: read {data.num_rows} rows for {len(day_list)} day(s) "
                        f"but lake.pending counted {expected}: nothing was written"
                    )
                props = {"lake.days": ",".join(day_list), "lake.rows": str(expected)}
                with tbl.transaction() as tx:
                    tx.overwrite(data, overwrite_filter=In("day", day_list),
                                 snapshot_properties=props)
                    crash_point("lake-after-data-files")
                crash_point("lake-after-commit")
                tbl = catalog.load_table((layer, table))
                snapshot_id = tbl.current_snapshot().snapshot_id
                with ledger.cursor() as lc:
                    lc.execute(
                        "select lake.record_exports(%s, %s, %s::jsonb)",
                        (table, snapshot_id, json.dumps([
                            {"day": d, "row_count": r, "checksum": c} for d, r, c in group
                        ])),
                    )
                    crash_point("lake-before-ledger-commit")
                ledger.commit()
                done["days"] += len(group)
                done["rows"] += expected
                done["snapshots"].append(str(snapshot_id))
            result["tables"][f"{layer}.{table}"] = done
            result["rows"] += done["rows"]
            result["days"] += done["days"]
    reader.rollback()
    reader.close()
    result["seconds"] = round(time.time() - started, 3)
    with ledger.cursor() as lc:
        lc.execute(
            "insert into lake.export_runs (started_at, finished_at, result) "
            "values (to_timestamp(%s), now(), %s::jsonb)",
            (started, json.dumps(result)),
        )
    ledger.commit()
    ledger.close()
    print(json.dumps(result), flush=True)
    return 0


def concise(error: Exception) -> str:
    """PyIceberg's schema mismatch is a drawn table: its first line and the rows marked wrong."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    bad = [" ".join(re.sub(r"[│┃|]", " ", line).replace("❌", "").split())
           for line in lines if "❌" in line]
    return lines[0] + (" (PostgreSQL's | the table's): " + "; ".join(bad) if bad else "")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ValueError as error:
        print(f"error: {concise(error)}", file=sys.stderr)
        sys.exit(1)
    except psycopg2.Error as error:
        primary = error.diag.message_primary if error.diag else None
        print(f"error: {primary or str(error).strip()}", file=sys.stderr)
        sys.exit(1)

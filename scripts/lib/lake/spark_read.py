"""An independent reader of the lake for the tests (scripts/lib/lake/lake_test.ts) and for
people checking a lake: Apache Spark with the Iceberg runtime (JVM, Maven Central), finding the
tables through the same SQL catalog by JDBC. Prints, per table and day, the rows and the
checksum lake.digest defines (db/functions/lake/export.sql), computed in Spark SQL.

Usage: python spark_read.py --jars a.jar,b.jar --jdbc URL --user U --password P
           --warehouse W --columns '{"silver.events": ["day", ...]}' [--s3-endpoint URL]
"""

import argparse
import json
import os

from pyspark.sql import SparkSession
from pyspark.sql import types as T


def render(name: str, dtype) -> str:
    """A column as lake.digest renders it (see its comment), in Spark SQL: name=value, or null."""
    col = f"`{name}`"
    if isinstance(dtype, T.StringType):
        text = col
    elif isinstance(dtype, T.TimestampType):
        text = f"cast(unix_micros({col}) as string)"
    elif isinstance(dtype, T.ArrayType):
        text = f"concat_ws(',', {col})"
    else:  # integers, decimals (plain, with their scale), dates (yyyy-MM-dd), booleans
        text = f"cast({col} as string)"
    return f"concat('{name}=', {text})"  # null stays null: concat_ws leaves it out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jars", required=True)
    parser.add_argument("--jdbc", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--columns", required=True)
    parser.add_argument("--s3-endpoint")
    args = parser.parse_args()
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("lake reader")
        .config("spark.jars", args.jars)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.catalog.lake", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.lake.type", "jdbc")
        .config("spark.sql.catalog.lake.uri", args.jdbc)
        .config("spark.sql.catalog.lake.jdbc.user", args.user)
        .config("spark.sql.catalog.lake.jdbc.password", args.password)
        .config("spark.sql.catalog.lake.jdbc.schema-version", "V1")
        .config("spark.sql.catalog.lake.warehouse", args.warehouse)
    )
    if args.s3_endpoint:
        builder = (
            builder.config("spark.sql.catalog.lake.io-impl", "org.apache.iceberg.aws.s3.S3FileIO")
            .config("spark.sql.catalog.lake.s3.endpoint", args.s3_endpoint)
            .config("spark.sql.catalog.lake.s3.path-style-access", "true")
            .config("spark.sql.catalog.lake.s3.access-key-id", os.environ["LAKE_S3_ACCESS_KEY_ID"])
            .config("spark.sql.catalog.lake.s3.secret-access-key",
                    os.environ["LAKE_S3_SECRET_ACCESS_KEY"])
            .config("spark.sql.catalog.lake.client.region",
                    os.environ.get("LAKE_S3_REGION", "us-east-1"))
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    out = {}
    for table, columns in json.loads(args.columns).items():
        df = spark.table(f"lake.{table}")
        types = {f.name: f.dataType for f in df.schema.fields}
        missing = [c for c in columns if c not in types]
        if missing:
            raise SystemExit(f"lake.{table} has no column(s) {', '.join(missing)}")
        row_text = "concat_ws('|', " + ", ".join(render(c, types[c]) for c in columns) + ")"
        rows = spark.sql(
            f"select cast(day as string) as day, count(*) as row_count, "
            f"cast(sum(cast(conv(substr(md5({row_text}), 1, 15), 16, 10) as decimal(38,0))) "
            f"as string) as checksum from lake.{table} group by day order by day"
        ).collect()
        out[table] = [[r["day"], r["row_count"], r["checksum"]] for r in rows]
    print(json.dumps(out), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()

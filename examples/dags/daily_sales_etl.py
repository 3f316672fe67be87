"""Daily sales ETL: the seed document's extract >> transform >> load, with real steps.

extract   reads the raw orders CSV that ships next to this DAG in the bucket (data/orders.csv)
transform drops invalid rows (missing or non-positive quantity) and sums revenue per day and
          country
load      upserts the totals into a SQLite warehouse under $AIRFLOW_HOME/warehouse/sales.db
report    prints the warehouse table with a BashOperator, as the seed's DAG did

Runs unchanged on Amazon MWAA and on airdock: only the standard library and Airflow.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task

DATA_FILE = Path(__file__).parent / "data" / "orders.csv"
WAREHOUSE = Path(os.environ.get("AIRFLOW_HOME", "/tmp")) / "warehouse" / "sales.db"


@dag(
    dag_id="daily_sales_etl",
    start_date=datetime(2026, 1, 1),
    schedule="@daily",
    catchup=False,
    tags=["example", "etl"],
)
def daily_sales_etl():
    @task
    def extract() -> list[dict]:
        with DATA_FILE.open(newline="") as f:
            rows = list(csv.DictReader(f))
        print(f"extracted {len(rows)} orders from {DATA_FILE.name}")
        return rows

    @task
    def transform(rows: list[dict]) -> list[dict]:
        totals: dict[tuple[str, str], float] = defaultdict(float)
        rejected = 0
        for row in rows:
            try:
                quantity = int(row["quantity"])
            except (TypeError, ValueError):
                rejected += 1
                continue
            if quantity <= 0:
                rejected += 1
                continue
            totals[(row["order_date"], row["country"])] += quantity * float(row["unit_price"])
        print(f"rejected {rejected} invalid orders")
        return [
            {"day": day, "country": country, "revenue": round(revenue, 2)}
            for (day, country), revenue in sorted(totals.items())
        ]

    @task
    def load(totals: list[dict]) -> int:
        WAREHOUSE.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(WAREHOUSE) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS daily_revenue ("
                " day TEXT, country TEXT, revenue REAL, PRIMARY KEY (day, country))"
            )
            db.executemany(
                "INSERT INTO daily_revenue (day, country, revenue) VALUES (:day, :country, :revenue)"
                " ON CONFLICT (day, country) DO UPDATE SET revenue = excluded.revenue",
                totals,
            )
        print(f"loaded {len(totals)} rows into {WAREHOUSE}")
        return len(totals)

    report = BashOperator(
        task_id="report",
        bash_command=(
            f'python3 -c "import sqlite3; '
            f"[print(*r) for r in sqlite3.connect('{WAREHOUSE}')"
            f".execute('SELECT day, country, revenue FROM daily_revenue ORDER BY day, country')]\""
        ),
    )

    load(transform(extract())) >> report


daily_sales_etl()

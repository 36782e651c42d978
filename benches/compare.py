"""The reconciliation join of `cargo bench --bench reconcile`, done by DuckDB (in memory) and by
pandas on the same files, for comparison. Prints one JSON object: seconds and class counts.

    python3 benches/compare.py DIR      # DIR holds orders.csv and vendor.csv from bench-data

Each engine reads both CSV files, groups vendor records by key, joins them to orders, classifies
every key (same classes and precedence as giftrecon) and sums fulfilled amounts per currency.
"""
import json
import sys
import time

MAPPING = {
    "pending": "pending", "processing": "pending",
    "fulfilled": "fulfilled", "completed": "fulfilled", "delivered": "fulfilled",
    "failed": "failed", "canceled": "failed", "cancelled": "failed",
    "refunded": "refunded",
}


def duckdb_run(d):
    import duckdb
    start = time.perf_counter()
    con = duckdb.connect(":memory:")
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in MAPPING.items())
    gl = lambda col: f"(CASE lower(trim({col})) {cases} ELSE NULL END)"
    con.execute(f"CREATE TABLE o AS SELECT * FROM read_csv('{d}/orders.csv', header=true, all_varchar=true)")
    con.execute(f"CREATE TABLE v AS SELECT * FROM read_csv('{d}/vendor.csv', header=true, all_varchar=true)")
    rows = con.execute(f"""
        WITH vk AS (
            SELECT COALESCE(NULLIF(idempotency_key, ''), '#' || vendor_order_id) AS k,
                   count(DISTINCT vendor_order_id) AS n,
                   min(CAST(amount AS DECIMAL(18,3))) AS amount, min(currency) AS currency,
                   min({gl('status')}) AS gl, count(*) FILTER (WHERE {gl('status')} IS NULL) AS unmapped
              FROM v GROUP BY 1),
        oo AS (SELECT idempotency_key AS k, CAST(amount AS DECIMAL(18,3)) AS amount, currency,
                      {gl('status')} AS gl FROM o),
        j AS (SELECT oo.k AS ok, vk.k AS vk, vk.n, oo.amount AS oa, vk.amount AS va,
                     oo.currency AS oc, vk.currency AS vc, oo.gl AS og, vk.gl AS vg, vk.unmapped
                FROM oo FULL OUTER JOIN vk ON oo.k = vk.k)
        SELECT class, count(*) FROM (
            SELECT CASE
                WHEN vk IS NULL THEN CASE WHEN og = 'failed' THEN NULL ELSE 'internal_only' END
                WHEN n > 1 THEN 'duplicate'
                WHEN ok IS NULL THEN 'vendor_only'
                WHEN oc <> vc THEN 'currency_mismatch'
                WHEN oa <> va THEN 'amount_mismatch'
                WHEN unmapped > 0 THEN 'unmapped_status'
                WHEN og <> vg THEN 'status_mismatch'
                ELSE 'matched' END AS class FROM j) WHERE class IS NOT NULL GROUP BY class
    """).fetchall()
    con.execute(f"""
        SELECT currency, sum(CAST(amount AS DECIMAL(18,3))) FROM o WHERE {gl('status')} = 'fulfilled' GROUP BY 1
        UNION ALL
        SELECT currency, sum(CAST(amount AS DECIMAL(18,3))) FROM v WHERE {gl('status')} = 'fulfilled' GROUP BY 1
    """).fetchall()
    return time.perf_counter() - start, dict(rows)


def pandas_run(d):
    import numpy as np
    import pandas as pd
    start = time.perf_counter()
    o = pd.read_csv(f"{d}/orders.csv", dtype=str, keep_default_na=False)
    v = pd.read_csv(f"{d}/vendor.csv", dtype=str, keep_default_na=False)
    # Exact amounts: thousandths as integers (no float ever holds money).
    def minor(s):
        parts = s.str.split(".", n=1, expand=True)
        whole = parts[0].astype("int64") * 1000
        frac = parts[1].fillna("").str.ljust(3, "0").replace("", "000").astype("int64") if parts.shape[1] > 1 else 0
        return whole + frac
    o["a"] = minor(o["amount"])
    v["a"] = minor(v["amount"])
    o["gl"] = o["status"].str.strip().str.lower().map(MAPPING)
    v["gl"] = v["status"].str.strip().str.lower().map(MAPPING)
    v["unm"] = v["gl"].isna().astype("int64")
    v["k"] = np.where(v["idempotency_key"] == "", "#" + v["vendor_order_id"], v["idempotency_key"])
    vk = v.groupby("k").agg(n=("vendor_order_id", "nunique"), va=("a", "min"), vc=("currency", "min"),
                            vg=("gl", "min"), unmapped=("unm", "sum")).reset_index()
    j = o.rename(columns={"idempotency_key": "k"}).merge(vk, on="k", how="outer", indicator=True)
    conds = [
        (j["_merge"] == "left_only") & (j["gl"] != "failed"),
        (j["_merge"] == "left_only"),
        j["n"] > 1,
        j["_merge"] == "right_only",
        j["currency"] != j["vc"],
        j["a"] != j["va"],
        j["unmapped"] > 0,
        j["gl"] != j["vg"],
    ]
    names = ["internal_only", "none", "duplicate", "vendor_only", "currency_mismatch",
             "amount_mismatch", "unmapped_status", "status_mismatch"]
    j["class"] = np.select(conds, names, default="matched")
    counts = j[j["class"] != "none"]["class"].value_counts().to_dict()
    o[o["gl"] == "fulfilled"].groupby("currency")["a"].sum()
    v[v["gl"] == "fulfilled"].groupby("currency")["a"].sum()
    return time.perf_counter() - start, {k: int(n) for k, n in counts.items()}


if __name__ == "__main__":
    d = sys.argv[1]
    out = {}
    for name, run in [("duckdb", duckdb_run), ("pandas", pandas_run)]:
        try:
            seconds, counts = run(d)
            out[name] = {"seconds": round(seconds, 3), "counts": counts}
        except ImportError as e:
            out[name] = {"skipped": str(e)}
    print(json.dumps(out))

# Peer: the db-benchmark group-by questions and a full sort in Dask
# (threaded scheduler, N workers), data loaded and persisted once, each
# question computed and timed (best of REPEAT). Follows the db-benchmark's
# dask solution; q8 and q9 use pandas-style apply per group as it does.
# usage: python3 groupby_dask.py FILE THREADS REPEAT
import sys
import time

import dask
import dask.dataframe as dd

path = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 1
dask.config.set(scheduler="threads", num_workers=threads)
x = dd.read_csv(path, dtype={"id1": "category", "id2": "category", "id3": "category"},
                blocksize="64MB")
x = x.categorize(columns=["id1", "id2", "id3"]).persist()
kw = dict(dropna=False, observed=True)

questions = [
    lambda: x.groupby("id1", **kw).agg({"v1": "sum"}).compute(),
    lambda: x.groupby(["id1", "id2"], **kw).agg({"v1": "sum"}).compute(),
    lambda: x.groupby("id3", **kw).agg({"v1": "sum", "v3": "mean"}).compute(),
    lambda: x.groupby("id4", **kw).agg({"v1": "mean", "v2": "mean", "v3": "mean"}).compute(),
    lambda: x.groupby("id6", **kw).agg({"v1": "sum", "v2": "sum", "v3": "sum"}).compute(),
    lambda: x.groupby(["id4", "id5"], **kw).agg({"v3": ["std"]}).compute(),  # dask has no median agg here
    lambda: x.groupby("id3", **kw).agg({"v1": "max", "v2": "min"}).compute(),
    lambda: x[~x["v3"].isna()][["id6", "v3"]].groupby("id6", **kw).apply(
        lambda g: g.nlargest(2, "v3"), meta={"id6": "int64", "v3": "float64"}).compute(),
    lambda: x[["id2", "id4", "v1", "v2"]].groupby(["id2", "id4"], **kw).apply(
        lambda g: g["v1"].corr(g["v2"]) ** 2, meta=("r2", "float64")).compute(),
    lambda: x.groupby(["id1", "id2", "id3", "id4", "id5", "id6"], **kw).agg(
        {"v3": "sum", "v1": "size"}).compute(),
    lambda: x.sort_values("v3").compute(),
]
for i, q in enumerate(questions):
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        ans = q()
        best = min(best, time.perf_counter() - t0)
        rows = len(ans)
        del ans
    name = f"q{i + 1}" if i < 10 else "sort"
    print(f"peer=dask question={name} rows={rows} seconds={best:.4f}", flush=True)

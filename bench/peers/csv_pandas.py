# Peer: pandas.read_csv (C engine) into a DataFrame, timed.
# usage: python3 csv_pandas.py FILE REPEAT
import sys
import time

import pandas as pd

path, repeat = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
best = float("inf")
rows = 0
for _ in range(repeat):
    t0 = time.perf_counter()
    df = pd.read_csv(path)
    best = min(best, time.perf_counter() - t0)
    rows = len(df)
    del df
print(f"peer=pandas rows={rows} seconds={best:.3f}")

#!/usr/bin/python3
"""Peer: liblinear (Debian liblinear-tools) logistic regression, timed.

usage: ml_liblinear.py TRAIN TEST [--C 1] [--solver 0]

Runs `liblinear-train -s SOLVER -c C -q TRAIN MODEL` (reads the file and
trains: the end-to-end time; liblinear has no separate training time) and
`liblinear-predict -b 1 TEST MODEL OUT`, then computes test accuracy and
log-loss from the probabilities liblinear wrote. -s 0 minimises
0.5|w|^2 + C sum(log-loss) without an intercept.
Prints one line of key=value pairs.
"""
import math
import os
import subprocess
import sys
import tempfile
import time


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    train, test = argv[0], argv[1]
    c, solver = "1", "0"
    i = 2
    while i < len(argv):
        if argv[i] == "--C":
            c = argv[i + 1]
        elif argv[i] == "--solver":
            solver = argv[i + 1]
        else:
            sys.exit(f"ml_liblinear.py: unknown option {argv[i]}")
        i += 2
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model")
        out = os.path.join(tmp, "pred")
        t0 = time.perf_counter()
        subprocess.run(["liblinear-train", "-s", solver, "-c", c, "-q", train, model], check=True)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run(["liblinear-predict", "-b", "1", test, model, out], check=True,
                       stdout=subprocess.DEVNULL)
        predict_s = time.perf_counter() - t0
        truth = []
        with open(test) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    truth.append(float(line.split()[0]))
        with open(out) as f:
            header = f.readline().split()
            labels = [float(x) for x in header[1:]]
            right = 0
            ll = 0.0
            n = 0
            for line, y in zip(f, truth):
                parts = line.split()
                pred = float(parts[0])
                probs = [float(p) for p in parts[1:]]
                right += pred == y
                p = probs[labels.index(y)] if y in labels else 0.0
                ll -= math.log(min(max(p, 1e-15), 1.0))
                n += 1
    print(f"peer=liblinear model=logreg load_s=- train_s=- total_s={train_s:.3f} "
          f"predict_s={predict_s:.3f} accuracy={right / n:.6f} logloss={ll / n:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

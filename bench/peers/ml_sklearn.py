#!/usr/bin/python3
"""Peer: scikit-learn on libsvm files, load and training timed apart.

usage:
  ml_sklearn.py logreg TRAIN TEST [--C 1] [--intercept] [--max-iter 100] [--tol 1e-4]
  ml_sklearn.py mlp    TRAIN TEST [--hidden 100] [--max-iter 10] [--batch-size 256]
                       [--lr 0.001] [--seed 42]
  ml_sklearn.py kmeans TRAIN      [--k 10] [--max-iter 20] [--seed 42] [--init k-means++]

logreg is LogisticRegression(solver='lbfgs'): objective 0.5|w|^2 + C sum(log-loss),
the same as liblinear -s 0 -c C and as partita with regParam 1/(C n),
standardization off; no intercept unless --intercept. Multinomial when the
training labels have more than two values.
Prints one line of key=value pairs: peer, model, rows, load_s, train_s,
total_s, iterations, and accuracy/logloss (logreg, mlp) or cost (kmeans).
Threads: whatever OMP_NUM_THREADS / OPENBLAS_NUM_THREADS allow.
"""
import sys
import time
import warnings

import numpy as np


def opts(argv, defaults):
    o = dict(defaults)
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            key = a[2:].replace("-", "_")
            if key not in o:
                sys.exit(f"ml_sklearn.py: unknown option {a}")
            if isinstance(o[key], bool):
                o[key] = True
                i += 1
            else:
                o[key] = type(o[key])(argv[i + 1])
                i += 2
        else:
            pos.append(a)
            i += 1
    return o, pos


def load(paths, n_features=None):
    from sklearn.datasets import load_svmlight_files
    t0 = time.perf_counter()
    data = load_svmlight_files(paths, n_features=n_features, dtype=np.float64)
    return data, time.perf_counter() - t0


def main(argv):
    warnings.filterwarnings("ignore")
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    model = argv[0]
    if model == "logreg":
        o, pos = opts(argv[1:], {"C": 1.0, "intercept": False, "max_iter": 100, "tol": 1e-4})
        (xtr, ytr, xte, yte), load_s = load(pos[:2])
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss
        clf = LogisticRegression(C=o["C"], fit_intercept=o["intercept"], solver="lbfgs",
                                 max_iter=o["max_iter"], tol=o["tol"])
        t0 = time.perf_counter()
        clf.fit(xtr, ytr)
        train_s = time.perf_counter() - t0
        prob = clf.predict_proba(xte)
        pred = clf.classes_[np.argmax(prob, axis=1)]
        acc = float(np.mean(pred == yte))
        ll = log_loss(yte, prob, labels=clf.classes_)
        iters = int(np.max(clf.n_iter_))
        print(f"peer=sklearn model=logreg rows={xtr.shape[0]} load_s={load_s:.3f} "
              f"train_s={train_s:.3f} total_s={load_s + train_s:.3f} iterations={iters} "
              f"accuracy={acc:.6f} logloss={ll:.6f}")
    elif model == "mlp":
        o, pos = opts(argv[1:], {"hidden": "100", "max_iter": 10, "batch_size": 256,
                                 "lr": 0.001, "seed": 42, "activation": "relu"})
        (xtr, ytr, xte, yte), load_s = load(pos[:2])
        from sklearn.neural_network import MLPClassifier
        from sklearn.metrics import log_loss
        layers = tuple(int(h) for h in o["hidden"].split(",") if h)
        clf = MLPClassifier(hidden_layer_sizes=layers, activation=o["activation"],
                            solver="adam", batch_size=o["batch_size"],
                            learning_rate_init=o["lr"], max_iter=o["max_iter"],
                            random_state=o["seed"], tol=0.0, n_iter_no_change=10**9)
        t0 = time.perf_counter()
        clf.fit(xtr, ytr)
        train_s = time.perf_counter() - t0
        prob = clf.predict_proba(xte)
        pred = clf.classes_[np.argmax(prob, axis=1)]
        acc = float(np.mean(pred == yte))
        ll = log_loss(yte, prob, labels=clf.classes_)
        print(f"peer=sklearn model=mlp rows={xtr.shape[0]} load_s={load_s:.3f} "
              f"train_s={train_s:.3f} total_s={load_s + train_s:.3f} iterations={clf.n_iter_} "
              f"accuracy={acc:.6f} logloss={ll:.6f}")
    elif model == "kmeans":
        o, pos = opts(argv[1:], {"k": 10, "max_iter": 20, "seed": 42, "init": "k-means++",
                                 "tol": 1e-4})
        (xtr, ytr), load_s = load(pos[:1])
        xtr = xtr.toarray()
        from sklearn.cluster import KMeans
        km = KMeans(n_clusters=o["k"], init=o["init"], n_init=1, max_iter=o["max_iter"],
                    tol=o["tol"], random_state=o["seed"], algorithm="lloyd")
        t0 = time.perf_counter()
        km.fit(xtr)
        train_s = time.perf_counter() - t0
        print(f"peer=sklearn model=kmeans rows={xtr.shape[0]} load_s={load_s:.3f} "
              f"train_s={train_s:.3f} total_s={load_s + train_s:.3f} iterations={km.n_iter_} "
              f"cost={km.inertia_:.6f}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Fashion-MNIST (Debian package dataset-fashion-mnist, idx gz files) to libsvm.

Writes into OUT_DIR:
  fmnist10_train.svm, fmnist10_test.svm  the 10-class problem, the original
                                         60,000 / 10,000 split, labels 0..9
  tops_train.svm, tops_test.svm          binary "tops vs rest": classes 0
                                         T-shirt, 2 pullover, 4 coat, 6 shirt
                                         -> +1, the others -> -1; all 70,000
                                         images pooled, shuffled with a fixed
                                         seed and split 49,000 / 21,000
Pixels are scaled to [0, 1] (value / 255) and written with up to 6
significant digits; zero pixels are omitted (sparse rows). Indices are
one-based (pixel p -> index p + 1).

usage: fmnist_to_libsvm.py OUT_DIR [SRC_DIR] [--seed 42]
"""
import gzip
import os
import struct
import sys

import numpy as np

SRC = "/usr/share/datasets/fashion-mnist"
TOPS = (0, 2, 4, 6)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load(src, kind):
    x = read_idx(os.path.join(src, f"{kind}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(src, f"{kind}-labels-idx1-ubyte.gz"))
    return x.reshape(len(x), -1), y.astype(np.int64)


# The text of pixel value v (0..255) once scaled: "%.6g" % (v / 255).
PIXEL_TEXT = [("%.6g" % (v / 255.0)) for v in range(256)]


def write_libsvm(path, x, labels):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for row, lab in zip(x, labels):
            nz = np.flatnonzero(row)
            parts = [str(lab)]
            parts.extend(f"{j + 1}:{PIXEL_TEXT[row[j]]}" for j in nz)
            f.write(" ".join(parts))
            f.write("\n")
    os.replace(tmp, path)


def main(argv):
    seed = 42
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "--seed":
            seed = int(argv[i + 1])
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    out = args[0]
    src = args[1] if len(args) > 1 else SRC
    os.makedirs(out, exist_ok=True)
    xtr, ytr = load(src, "train")
    xte, yte = load(src, "t10k")
    write_libsvm(os.path.join(out, "fmnist10_train.svm"), xtr, ytr)
    write_libsvm(os.path.join(out, "fmnist10_test.svm"), xte, yte)

    x = np.concatenate([xtr, xte])
    y = np.concatenate([ytr, yte])
    yb = np.where(np.isin(y, TOPS), 1, -1)
    perm = np.random.RandomState(seed).permutation(len(x))
    ntrain = 49000
    tr, te = perm[:ntrain], perm[ntrain:]
    write_libsvm(os.path.join(out, "tops_train.svm"), x[tr], yb[tr])
    write_libsvm(os.path.join(out, "tops_test.svm"), x[te], yb[te])
    print(f"fmnist_to_libsvm: wrote 60000/10000 ten-class and {ntrain}/{len(x) - ntrain} "
          f"tops-vs-rest rows (positives {int((yb == 1).sum())}) into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Writes the tiny .npy/.npz fixtures of Tests/DecoupledHDF5Tests/NumPyImportTests.swift.

The files are committed, so the tests need no NumPy; rerun this (Debian python3-numpy) after
changing it:  python3 scripts/datasets/make-numpy-fixtures.py

Every value follows a formula the Swift tests recompute:
  train images  x[i, r, c] = (i * 6 + r * 3 + c) % 256     shape (12, 2, 3), labels i % 3
  test images   x[i, r, c] = (200 + i * 6 + r * 3 + c) % 256 shape (4, 2, 3),  labels (i + 1) % 3
"""
import io
import os
import zipfile

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "DecoupledHDF5Tests", "Fixtures", "numpy")


def images(n, offset):
    i, r, c = np.meshgrid(np.arange(n), np.arange(2), np.arange(3), indexing="ij")
    return ((offset + i * 6 + r * 3 + c) % 256).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    x_train, y_train = images(12, 0), (np.arange(12) % 3).astype(np.int64)
    x_test, y_test = images(4, 200), ((np.arange(4) + 1) % 3).astype(np.int64)

    def save(name, array, **kw):
        with open(os.path.join(OUT, name), "wb") as f:
            np.lib.format.write_array(f, array, allow_pickle=False, **kw)

    save("x_train.npy", x_train)
    save("y_train.npy", y_train)
    save("x_test.npy", x_test)
    save("y_test.npy", y_test)
    # float64 images (N, 6) and uint8 labels of shape (N, 1), as CIFAR's labels are.
    save("x_train_f64.npy", x_train.reshape(12, 6).astype(np.float64) / 2)
    save("y_train_col.npy", y_train.astype(np.uint8).reshape(12, 1))
    # The same images in Fortran order, and in format versions 2.0 and 3.0.
    save("x_train_fortran.npy", np.asfortranarray(x_train.astype(np.float32)))
    save("x_train_v2.npy", x_train, version=(2, 0))
    save("x_train_v3.npy", x_train, version=(3, 0))
    # Refused inputs.
    save("x_train_bigendian.npy", x_train.astype(">f4"))
    save("y_train_float.npy", y_train.astype(np.float32))
    save("y_train_onehot.npy", np.eye(3, dtype=np.uint8)[y_train])
    save("y_train_negative.npy", y_train - 1)
    save("x_train_float16.npy", x_train.astype(np.float16))

    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    np.savez(os.path.join(OUT, "keras-stored.npz"), **arrays)
    np.savez_compressed(os.path.join(OUT, "keras-compressed.npz"), **arrays)
    np.savez_compressed(os.path.join(OUT, "no-test.npz"), x_train=x_train, y_train=y_train)
    np.savez(os.path.join(OUT, "custom-keys.npz"), X=x_train, y=y_train, Xt=x_test, yt=y_test)
    # An archive whose member uses bzip2 (zip method 12), which np.load reads but we do not.
    buf = io.BytesIO()
    np.lib.format.write_array(buf, x_train)
    with zipfile.ZipFile(os.path.join(OUT, "bzip2.npz"), "w", compression=zipfile.ZIP_BZIP2) as z:
        z.writestr("x_train.npy", buf.getvalue())
        z.writestr("y_train.npy", buf.getvalue())

    # Self-check: NumPy reads back what the tests expect.
    with np.load(os.path.join(OUT, "keras-compressed.npz")) as z:
        assert (z["x_train"] == x_train).all() and (z["y_test"] == y_test).all()
    assert (np.load(os.path.join(OUT, "x_train_fortran.npy")) == x_train).all()
    print("wrote", len(os.listdir(OUT)), "fixtures to", os.path.normpath(OUT))


if __name__ == "__main__":
    main()

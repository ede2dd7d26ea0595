"""Regenerate ``digits.npz`` from scikit-learn's copy of the UCI 8x8 handwritten digits.

The images ship inside the scikit-learn wheel (``sklearn.datasets.load_digits``), which
holds the 1,797 test images of the UCI "Optical Recognition of Handwritten Digits" set
(Alpaydin and Kaynak, 1998): 8x8 pixels, each a count 0..16 of set bits in a 4x4 block
of the original 32x32 bitmap. neurosim does not depend on scikit-learn; this script is
only needed to rebuild the snapshot::

    pip install scikit-learn && python -m neurosim.datasets.make_digits_snapshot

The train/test split is fixed: a permutation from ``numpy.random.default_rng(0)``, the
first 1,437 images for training and the last 360 for testing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_TRAIN = 1437
SEED = 0


def main() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.data.astype(np.uint8)           # [1797, 64], values 0..16
    labels = digits.target.astype(np.uint8)
    order = np.random.default_rng(SEED).permutation(len(labels))
    out = Path(__file__).with_name("digits.npz")
    np.savez_compressed(out, images=images, labels=labels, train_idx=order[:N_TRAIN].astype(np.int16),
                        test_idx=order[N_TRAIN:].astype(np.int16))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

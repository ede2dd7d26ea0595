"""Sparse linear maps with a delay per entry (`Coo`), and convolution and pooling as such maps.

The NIR and netx importers compose every chain of linear nodes between two neuron populations into
one of these, and turn it into the graph's projections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.datasets import check_allocation
from neurosim.errors import UserError

BYTES_PER_ENTRY = 96      # an entry's row, column, value and delay, with the copies that sorting and summing make


@dataclass
class Coo:
    """A linear map ``[n_out, n_in]`` as entries, each with its delay in steps."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    delays: np.ndarray
    n_out: int
    n_in: int

    @classmethod
    def identity(cls, n: int, delays: np.ndarray | None = None) -> Coo:
        idx = np.arange(n, dtype=np.int64)
        return cls(idx, idx.copy(), np.ones(n), np.zeros(n, np.int64) if delays is None else delays, n, n)

    @classmethod
    def dense(cls, w: np.ndarray) -> Coo:
        rows, cols = np.nonzero(w)
        return cls(rows.astype(np.int64), cols.astype(np.int64), w[rows, cols].astype(np.float64),
                   np.zeros(len(rows), np.int64), w.shape[0], w.shape[1])

    def reduced(self) -> Coo:
        """Entries with the same row, column and delay summed; zeros dropped; sorted by column, row."""
        if not len(self.rows):
            return self
        d_max = int(self.delays.max()) + 1
        key = (self.cols * self.n_out + self.rows) * d_max + self.delays
        uniq, inverse = np.unique(key, return_inverse=True)
        vals = np.bincount(inverse, weights=self.vals, minlength=len(uniq))
        keep = vals != 0
        uniq, vals = uniq[keep], vals[keep]
        delays = uniq % d_max
        rows = (uniq // d_max) % self.n_out
        cols = (uniq // d_max) // self.n_out
        return Coo(rows, cols, vals, delays, self.n_out, self.n_in)


def finite(value, what: str, positive: bool = False) -> np.ndarray:
    """``value`` as float64; a ValueError when it holds NaN or infinity (or, with ``positive``, a
    value of 0 or less)."""
    x = np.asarray(value, np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} holds values that are not finite numbers (NaN or infinity)")
    if positive and np.any(x <= 0):
        raise ValueError(f"{what} holds {x[x <= 0].ravel()[0]:g}, expected positive values")
    return x


def fits(count: int, bytes_each: int, what: str) -> None:
    """A ValueError when ``count`` things of ``bytes_each`` would not fit in memory
    (`neurosim.datasets.check_allocation`), checked before they are made."""
    try:
        check_allocation(count * bytes_each, what)
    except UserError as err:
        raise ValueError(err.message) from None


def compose(second: Coo, first: Coo) -> Coo:
    """``second @ first``, delays adding along each path."""
    order = np.argsort(first.rows, kind="stable")
    f_rows, f_cols, f_vals, f_del = first.rows[order], first.cols[order], first.vals[order], first.delays[order]
    ptr = np.concatenate([[0], np.cumsum(np.bincount(f_rows, minlength=first.n_out))])
    counts = ptr[second.cols + 1] - ptr[second.cols]
    fits(int(counts.sum()), BYTES_PER_ENTRY, f"composing linear maps into {int(counts.sum()):,} synapses")
    k = np.repeat(np.arange(len(second.rows)), counts)
    j = np.repeat(ptr[second.cols] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    return Coo(second.rows[k], f_cols[j], second.vals[k] * f_vals[j], second.delays[k] + f_del[j],
               second.n_out, first.n_in).reduced()


def concatenate(parts: list[Coo]) -> Coo:
    first = parts[0]
    return Coo(*(np.concatenate([getattr(p, a) for p in parts]) for a in ("rows", "cols", "vals", "delays")),
               first.n_out, first.n_in).reduced()


def pair(value, n: int = 2, what: str = "a size", least: int = 1) -> tuple[int, ...]:
    """``value`` (one integer, or one per axis) as ``n`` integers of at least ``least``; a ValueError else."""
    raw = np.atleast_1d(np.asarray(value))
    if raw.dtype.kind not in "biuf" or raw.ndim != 1 or raw.size not in (1, n) or not np.all(np.isfinite(raw)) \
            or np.any(raw != np.rint(raw)) or np.any(raw < least) or np.any(raw > 1 << 20):
        raise ValueError(f"{what} of {value!r}, expected {'an integer' if n == 1 else f'1 or {n} integers'} "
                         f"of at least {least}")
    arr = raw.astype(np.int64)
    return tuple(int(v) for v in (np.repeat(arr, n) if arr.size == 1 else arr))


def conv_map(weight: np.ndarray, in_shape: tuple[int, ...], stride, padding, dilation, groups: int,
             bias: np.ndarray | None) -> tuple[Coo, np.ndarray, tuple[int, ...]]:
    """A 1d or 2d convolution over a (C, *spatial) input, channel-major, as entries; its bias per
    output element; and its output shape."""
    spatial = len(in_shape) - 1
    if spatial < 1 or weight.ndim != spatial + 2 or min(in_shape) < 1 or min(weight.shape) < 1:
        raise ValueError(f"a kernel of shape {weight.shape} over an input of shape {tuple(in_shape)}, expected "
                         f"[out, in, *kernel] with as many axes as the input's (channels, *spatial)")
    if not np.all(np.isfinite(weight)):
        raise ValueError("a kernel that holds values that are not finite numbers (NaN or infinity)")
    c_in, dims = in_shape[0], in_shape[1:]
    c_out, c_per_group, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    stride, dilation = pair(stride, spatial, "a stride"), pair(dilation, spatial, "a dilation")
    (groups,) = pair(groups, 1, "groups")
    if c_per_group * groups != c_in or c_out % groups:
        raise ValueError(f"{groups} groups of a kernel of shape {weight.shape} over {c_in} input channels, expected "
                         f"{c_in} = groups x {c_per_group} and output channels a multiple of groups")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * spatial
        elif padding == "same":
            padding = tuple((d * (k - 1)) // 2 for d, k in zip(dilation, kernel))
        else:
            raise ValueError(f"padding {padding!r}, expected a number, 'same' or 'valid'")
    padding = pair(padding, spatial, "a padding", least=0)
    out_dims = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                     for n, p, d, k, s in zip(dims, padding, dilation, kernel, stride))
    if min(out_dims) < 1:
        raise ValueError(f"a kernel of shape {weight.shape} larger than its padded input of shape {tuple(in_shape)}")
    entries = c_out * c_per_group * int(np.prod(kernel)) * int(np.prod(out_dims))
    fits(entries, BYTES_PER_ENTRY, f"a convolution of {entries:,} synapses")
    out_grid = np.stack(np.meshgrid(*[np.arange(o) for o in out_dims], indexing="ij"), axis=-1).reshape(-1, spatial)
    n_pos = len(out_grid)
    out_per_group = c_out // groups
    rows, cols, vals = [], [], []
    for oc in range(c_out):
        g = oc // out_per_group
        for icl in range(c_per_group):
            ic = g * c_per_group + icl
            for offset in np.ndindex(*kernel):
                w = float(weight[(oc, icl) + offset])
                if w == 0.0:
                    continue
                pos = out_grid * np.array(stride) + np.array(offset) * np.array(dilation) - np.array(padding)
                inside = np.all((pos >= 0) & (pos < np.array(dims)), axis=1)
                flat_in = np.ravel_multi_index(tuple(pos[inside].T), dims) if spatial else np.zeros(0, np.int64)
                rows.append(oc * n_pos + np.flatnonzero(inside))
                cols.append(ic * int(np.prod(dims)) + flat_in)
                vals.append(np.full(int(inside.sum()), w))
    n_out, n_in = c_out * n_pos, c_in * int(np.prod(dims))
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    coo = Coo(cat(rows, np.int64), cat(cols, np.int64), cat(vals, np.float64), np.zeros(sum(map(len, rows)), np.int64),
              n_out, n_in).reduced()
    b = np.repeat(np.asarray(bias, np.float64).ravel(), n_pos) if bias is not None else np.zeros(n_out)
    return coo, b, (c_out, *out_dims)


def pool_map(in_shape: tuple[int, ...], kernel, stride, padding, average: bool) -> tuple[Coo, tuple[int, ...]]:
    """A 2d sum or average pooling per channel as entries, and its output shape."""
    c, kernel = in_shape[0], pair(kernel, 2, "a kernel size")
    fits(c * kernel[0] * kernel[1], BYTES_PER_ENTRY, f"a pooling of {c:,} channels by {kernel[0]} x {kernel[1]}")
    weight = np.zeros((c, 1) + kernel)
    weight[:] = 1.0 / (kernel[0] * kernel[1]) if average else 1.0
    coo, _, out_shape = conv_map(weight, in_shape, stride if stride is not None else kernel, padding, 1, c, None)
    return coo, out_shape


def m_apply(m: Coo, x: np.ndarray) -> np.ndarray:
    return np.bincount(m.rows, weights=m.vals * x[m.cols], minlength=m.n_out)

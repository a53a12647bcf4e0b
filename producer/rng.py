"""Counter-based randomness: every random number is a pure function of its key.

A generator never holds a random *stream*. Instead each draw is ``mix64(key + i * GOLDEN)``
where the key is derived from ``(seed, stream, entity, step)``. So an entity's output does not
depend on scheduling, on batch sizes, on which other entities exist, or on how many processes
share the work: the determinism, sharding and backfill-equals-live properties all follow from
this one module. The mixer is SplitMix64's finaliser, vectorised with numpy (uint64 arithmetic
wraps, which is exactly what we want).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / float(1 << 53)
_BLOCK_ROWS = 8192


def mix64(x: U64) -> U64:
    """SplitMix64 finaliser of ``x + GOLDEN`` (element-wise, wrapping)."""
    z = x + GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def text_key(*parts: object) -> int:
    """A stable 64-bit key for names (seed, stream, salts): never Python's salted ``hash``."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def combine(key: U64 | int, value: npt.NDArray[np.integer] | int) -> U64:
    """Key of a child: ``mix64(key ^ mix64(value))``, element-wise."""
    k = np.atleast_1d(np.asarray(key, dtype=np.uint64))  # 0-d arithmetic would warn on wrap
    v = np.atleast_1d(np.asarray(value)).astype(np.uint64, copy=False)
    return mix64(k ^ mix64(v))


def draw(keys: U64, index: int) -> U64:
    """The ``index``-th 64-bit draw of each key."""
    return mix64(keys + np.uint64((index * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF))


def uniform(keys: U64, index: int) -> F64:
    """Uniform floats in the open interval (0, 1), one per key."""
    return ((draw(keys, index) >> _S11).astype(np.float64) + 0.5) * _INV53


@functools.lru_cache(maxsize=256)
def _offsets(indices: tuple[int, ...]) -> U64:
    return np.asarray([(i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF for i in indices],
                      dtype=np.uint64)[None, :]  # fmt: skip


def draws(keys: U64, indices: tuple[int, ...]) -> U64:
    """Draws ``indices`` of every key in one pass, as an ``(n, len(indices))`` array: column
    ``j`` is ``draw(keys, indices[j])``."""
    return mix64(keys[:, None] + _offsets(indices))


def uniforms(keys: U64, indices: tuple[int, ...]) -> F64:
    """``uniform(keys, i)`` for each of ``indices``, in one pass (columns)."""
    out: F64 = ((draws(keys, indices) >> _S11).astype(np.float64) + 0.5) * _INV53
    return out


def uniform_block(keys: U64, count: int) -> F64:
    """Draws ``0 .. count-1`` of every key at once, as an ``(n, count)`` array of uniforms.

    The same numbers as ``uniform(keys, i)`` column by column, in one pass (fewer numpy calls
    matter for the small batches of a live tick).
    """
    offsets = (np.arange(count, dtype=np.uint64) * GOLDEN)[None, :]
    out = np.empty((keys.size, count))
    for lo in range(0, keys.size, _BLOCK_ROWS):  # rows in cache-sized blocks
        z = mix64(keys[lo : lo + _BLOCK_ROWS, None] + offsets)
        out[lo : lo + _BLOCK_ROWS] = ((z >> _S11).astype(np.float64) + 0.5) * _INV53
    return out


def box_muller(u1: F64, u2: F64) -> F64:
    """Standard normals from two arrays of uniforms in (0, 1)."""
    result: F64 = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return result


def box_muller_pair(u1: F64, u2: F64) -> tuple[F64, F64]:
    """Two independent standard normals from one pair of uniform arrays (cos and sin)."""
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    first: F64 = radius * np.cos(angle)
    second: F64 = radius * np.sin(angle)
    return first, second

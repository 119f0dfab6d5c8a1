"""Spark's `HashingTF` term hashing, reproduced in numpy for the no-Spark single-photo path.

Spark hashes each term's UTF-8 bytes with MurmurHash3 x86 32-bit (seed 42) and takes the non-negative modulo of
the number of features; tests check this against Spark itself.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SPARK_HASHING_SEED = 42
_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def murmur3_32(data: bytes, seed: int = SPARK_HASHING_SEED) -> int:
    """MurmurHash3 x86 32-bit of `data`, as a signed 32-bit int (what the JVM returns)."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & _MASK
    n = len(data)
    body = n - n % 4
    for i in range(0, body, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & _MASK
        k = _rotl(k, 15)
        k = (k * c2) & _MASK
        h ^= k
        h = _rotl(h, 13)
        h = (h * 5 + 0xE6546B64) & _MASK
    tail = data[body:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & _MASK
        k = _rotl(k, 15)
        k = (k * c2) & _MASK
        h ^= k
    h ^= n
    h = _fmix(h)
    return h - (1 << 32) if h & 0x80000000 else h


def term_index(term: str, num_features: int) -> int:
    """The HashingTF bucket of one term."""
    h = murmur3_32(term.encode("utf-8"))
    return ((h % num_features) + num_features) % num_features


def hashing_tf(terms: Iterable[str], num_features: int, binary: bool = False) -> np.ndarray:
    """Dense term-frequency vector of `terms`, identical to Spark's HashingTF output."""
    out = np.zeros(num_features, dtype=np.float64)
    for term in terms:
        idx = term_index(term, num_features)
        out[idx] = 1.0 if binary else out[idx] + 1.0
    return out

"""The compiled all-pairs kernel: power sums S_k(q, p) = sum_i |q_i - p_i|^k (k = inf: the max).

S_k is the L_k distance before its final root, D_k = S_k^(1/k): it ranks neighbours exactly as
D_k does and saves the root on every pair.

Why a kernel of our own rather than torch.cdist:

- fractional k: cdist evaluates pow(|q_i - p_i|, k) for every term (about 4 ns per term here);
  for k = 0.5 this kernel takes sqrt, which is correctly rounded and vectorises, at about a
  fifteenth of the time (bench/contrast.py);
- k = 2: cdist uses ||q||^2 + ||p||^2 - 2 q.p (a matrix multiply) for more than 25 rows, which
  loses digits to cancellation and can swap near neighbours;
- every k: cdist accumulates in the input's float32, this kernel in float64.

Layout and exactness. Points come transposed, (d, N), so that the innermost loop runs over
contiguous points and compiles to SIMD without reassociating any sum (no fastmath). Each term:

- k in {1, 2, 3} and inf: the difference is formed in float64, where the difference of two
  float32 values is exact (unless their magnitudes differ by more than 2^29), so the terms
  |t| and t*t are exact and t^3 is rounded once;
- k = 0.5: sqrt(|q_i - p_i|) in the input dtype (two correctly rounded operations), which keeps
  float32 input on the fast single-precision SIMD path;
- other k: pow(|q_i - p_i|, k) in the input dtype (libm, within an ulp; scalar, so no faster
  than torch.cdist).

Terms are summed in float64 over features in order i = 0 .. d - 1, so S_k(q, p) == S_k(p, q)
bit for bit and every pair sees the same operations.

Parallelism: numba prange over (block of ROWS queries) x (tile of TILE points) tasks, so one
query against many points (synthetic mode) runs on all cores too. Memory: one (ROWS, TILE)
float64 accumulator per task besides the output.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

ROWS = 8  # queries per task: each loaded point value is reused ROWS times
TILE = 256  # points per task: the (ROWS, TILE) float64 accumulator stays in L1

# Which term the kernel sums (op codes; k itself is only read by POW).
SQRT, ABS, SQUARE, CUBE, POW, MAX = range(6)


def op_for(k: float) -> int:
    """The cheapest exact way to form |t|^k for this k."""
    if k == np.inf:
        return MAX
    return {0.5: SQRT, 1.0: ABS, 2.0: SQUARE, 3.0: CUBE}.get(float(k), POW)


@njit(parallel=True, cache=True, nogil=True)
def power_sums_kernel(queries, points_t, op, k, out):
    """out[q, p] = S_k(queries[q], points_t[:, p]); queries (Q, d), points_t (d, N), out (Q, N) float64."""
    n_queries, n_features = queries.shape
    n_points = points_t.shape[1]
    n_row_blocks = (n_queries + ROWS - 1) // ROWS
    n_tiles = (n_points + TILE - 1) // TILE
    for task in prange(n_row_blocks * n_tiles):
        q0 = (task // n_tiles) * ROWS
        p0 = (task % n_tiles) * TILE
        n_rows = min(ROWS, n_queries - q0)
        width = min(TILE, n_points - p0)
        acc = np.zeros((ROWS, TILE), np.float64)
        for i in range(n_features):
            column = points_t[i, p0 : p0 + width]  # (width,) contiguous
            for r in range(n_rows):
                qi = queries[q0 + r, i]
                qi64 = np.float64(qi)
                row = acc[r]
                # One loop per op, so that each inner loop is branch-free and vectorises.
                if op == SQRT:
                    for j in range(width):
                        row[j] += np.float64(np.sqrt(np.abs(column[j] - qi)))
                elif op == ABS:
                    for j in range(width):
                        row[j] += np.abs(np.float64(column[j]) - qi64)
                elif op == SQUARE:
                    for j in range(width):
                        t = np.float64(column[j]) - qi64
                        row[j] += t * t
                elif op == CUBE:
                    for j in range(width):
                        t = np.abs(np.float64(column[j]) - qi64)
                        row[j] += t * t * t
                elif op == MAX:
                    for j in range(width):
                        row[j] = max(row[j], np.abs(np.float64(column[j]) - qi64))
                else:
                    for j in range(width):
                        row[j] += np.float64(np.abs(column[j] - qi) ** k)  # pow in the input dtype
        for r in range(n_rows):
            for j in range(width):
                out[q0 + r, p0 + j] = acc[r, j]

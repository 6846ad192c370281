"""A small thread pool for column-wise work: Arrow and numpy kernels run without the GIL, so two
columns checked at once use two cores. Results come back in input order, so output stays deterministic.

Example: typed = parallel_map(check_one_column, names)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa


def parallel_map(fn, items: list, workers: int | None = None) -> list:
    """fn over items, ``workers`` at a time (default: the CPU count, at most 4)."""
    workers = workers or min(pa.cpu_count(), 4)
    if workers <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))

"""One memory unit for the whole course: bytes in code, GiB (2**30 bytes) and MiB (2**20) on screen.

GPU makers' "16 GB" cards hold 16 GiB (a T4 has 15,360 MiB), so GiB is also the unit cards are
compared in. Every printed size and every plot axis says GiB or MiB. Introduced in notebook
01_full_finetuning.
"""

from __future__ import annotations

MiB = 2**20
GiB = 2**30


def mib(n_bytes: float) -> float:
    """Bytes to MiB."""
    return n_bytes / MiB


def gib(n_bytes: float) -> float:
    """Bytes to GiB."""
    return n_bytes / GiB

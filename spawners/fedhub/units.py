"""Memory and walltime: strict parsing of what people type, canonical forms for Slurm.

User text is parsed into integers here and Slurm only ever sees the canonical form these
functions print, so nothing a user typed reaches sbatch verbatim.
"""

from __future__ import annotations

import re

from .i18n import _

_MEMORY_RE = re.compile(r"^\s*(\d{1,9})\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_MEMORY_FACTOR_MB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}
_WALLTIME_RE = re.compile(r"^\s*(?:(\d{1,3})-)?(\d{1,3}):(\d{2}):(\d{2})\s*$")

MAX_MEMORY_MB = 1024 ** 3  # 1 PiB: anything larger is a typo, not a request


def parse_memory_mb(text: str) -> int:
    """'2G' -> 2048, '512M' -> 512, '1024' -> 1024 (MB, like Slurm's --mem)."""
    m = _MEMORY_RE.match(str(text))
    if not m:
        raise ValueError(_("{value!r} is not a memory size; write e.g. 512M, 4G or 1T").format(value=text))
    number, unit = int(m.group(1)), m.group(2).upper()
    mb = number * _MEMORY_FACTOR_MB[unit]
    if mb < 1 or mb > MAX_MEMORY_MB or mb != int(mb):
        raise ValueError(_("{value!r} is out of range; give at least 1M and whole megabytes").format(value=text))
    return int(mb)


def format_memory_mb(mb: int) -> str:
    """2048 -> '2G', 1536 -> '1536M': what the form and messages show."""
    if mb % (1024 * 1024) == 0:
        return f"{mb // (1024 * 1024)}T"
    if mb % 1024 == 0:
        return f"{mb // 1024}G"
    return f"{mb}M"


def parse_walltime(text: str, minimum: int = 60) -> int:
    """'01:30:00' -> 5400, '2-00:00:00' -> 172800, '90' (minutes) -> 5400. Seconds."""
    text = str(text).strip()
    if re.fullmatch(r"\d{1,6}", text):
        seconds = int(text) * 60
    else:
        m = _WALLTIME_RE.match(text)
        if not m:
            raise ValueError(_("{value!r} is not a walltime; write HH:MM:SS, D-HH:MM:SS or minutes").format(value=text))
        days, hours, minutes, secs = (int(g) if g else 0 for g in m.groups())
        if minutes > 59 or secs > 59:
            raise ValueError(_("{value!r} is not a walltime; minutes and seconds go up to 59").format(value=text))
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds < minimum:
        raise ValueError(_("{value!r} is too short; ask for at least one minute").format(value=text) if minimum == 60
                         else _("{value!r} is too short; give at least {n} seconds").format(value=text, n=minimum))
    if seconds > 365 * 24 * 3600:
        raise ValueError(_("{value!r} is longer than a year").format(value=text))
    return seconds


def format_walltime(seconds: int) -> str:
    """5400 -> '01:30:00', 93600 -> '1-02:00:00' (Slurm's --time syntax)."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def human_bytes(n: int) -> str:
    """52428800 -> "52 MB": sizes as the progress page and the lab say them (decimal units)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n} bytes"

"""Values whose units the running software reads: sizes, CPU, JVM heaps, Redis memory, durations,
percentages, Prometheus retention and cron schedules.

Each is accepted in the forms people write and converted to the form that software expects
(``15s`` → 15 seconds, ``512MB`` → ``512Mi``, ``1Gi`` → JVM ``1g``, ``512Mi`` → Redis ``512mb``),
or refused with the unit to use.
"""

from __future__ import annotations

import re
from typing import Annotated, Optional

from pydantic import BeforeValidator

_CPU_RE = re.compile(r"^(\d+m|\d+(\.\d{1,3})?)$")

_QTY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$")
_POWER = {"k": 1, "m": 2, "g": 3, "t": 4}


def _quantity(v: object, example: str) -> tuple[float, str]:
    """A number and its unit letters: ``"512 MB"`` → (512.0, "MB")."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"must be a size such as {example}")
    m = _QTY_RE.match(str(v).strip())
    if not m:
        raise ValueError(f"must be a size: a number with a unit, such as {example}")
    return float(m.group(1)), m.group(2)


def _binary_power(unit: str) -> Optional[int]:
    """``Mi``, ``MiB``, ``MB``, ``M``, ``m``, ``mb`` → 2. Docker, Compose and the JVM read all of
    these as binary units (``512m`` is 512 MiB to Docker), so Berth does too."""
    m = re.fullmatch(r"([kmgt])(i|ib|b)?", unit.lower())
    return _POWER[m.group(1)] if m else None


def _binary_size(v: object) -> str:
    """A memory or volume size as a Kubernetes binary quantity (``Mi``/``Gi``/``Ti``). Other forms
    are refused with the value to write: ``512MB`` is 512 MiB to Docker but 488 MiB to Kubernetes."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"must be a size with a unit: {v:g}Mi or {v:g}Gi")
    n, unit = _quantity(v, "512Mi or 10Gi")
    power = _binary_power(unit) if unit else None
    suffix = {2: "Mi", 3: "Gi", 4: "Ti"}.get(power or 0)
    if suffix is None:
        raise ValueError(f"must be a size such as 512Mi or 10Gi (unit {unit or '(none)'!r}: use Mi, Gi or Ti)")
    if unit != suffix:
        raise ValueError(f"must be a size in Kubernetes binary units: write {n:g}{suffix} (Mi, Gi or Ti)")
    if n == int(n):
        return f"{int(n)}{suffix}"
    mib = n * 1024 ** (power - 2)  # 1.5Gi → 1536Mi (whole numbers keep Docker's memory exact)
    if mib < 1 or mib != int(mib):
        raise ValueError("must be a size of whole Mi (at least 1Mi)")
    return f"{int(mib)}Mi"


def memory_mib(value: str) -> int:
    """A size in binary units → MiB: ``"512Mi"`` → 512, ``"1Gi"`` → 1024, ``"1Ti"`` → 1048576."""
    n, unit = _quantity(value, "512Mi")
    power = _binary_power(unit) or 2
    return int(n * 1024 ** (power - 2))


def cpu_millis(value: str) -> int:
    """``"500m"`` → 500, ``"1"`` → 1000, ``"1.5"`` → 1500."""
    return int(value[:-1]) if value.endswith("m") else int(round(float(value) * 1000))


def _cpu(v: object) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = f"{v:g}"  # YAML turns `cpu_limit: 1` into a number
    text = str(v).strip()
    if not _CPU_RE.match(text):
        raise ValueError("must be a CPU quantity such as 250m, 1 or 1.5 (cores)")
    return text


def _jvm_size(v: object) -> str:
    """A JVM memory size (``-Xmx``, Neo4j memory settings): ``512m`` or ``2g``."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"has no unit; write {v:g}m or {v:g}g")
    n, unit = _quantity(v, "512m or 2g")
    power = _binary_power(unit) if unit else None
    if power is None or power < 2:
        raise ValueError(f"unit {unit or '(none)'!r} is not a JVM size unit; use m or g (512m, 2g)")
    mib = n * 1024 ** (power - 2)
    if mib < 1 or mib != int(mib):
        raise ValueError("must be a whole number of megabytes (e.g. 1536m)")
    if power == 3 and n == int(n):
        return f"{int(n)}g"
    return f"{int(mib)}m"


def jvm_mib(value: str) -> int:
    return memory_mib(value)


_REDIS_UNITS = {  # what Redis reads (config.c memtoull): k/m/g are powers of 1000, kb/mb/gb of 1024
    "b": ("b", 1), "k": ("k", 1000), "kb": ("kb", 1024), "ki": ("kb", 1024), "kib": ("kb", 1024),
    "m": ("m", 1000 ** 2), "mb": ("mb", 1024 ** 2), "mi": ("mb", 1024 ** 2), "mib": ("mb", 1024 ** 2),
    "g": ("g", 1000 ** 3), "gb": ("gb", 1024 ** 3), "gi": ("gb", 1024 ** 3), "gib": ("gb", 1024 ** 3),
}


def _redis_memory(v: object) -> str:
    """Redis ``maxmemory``: Kubernetes units (``512Mi``) become Redis's (``512mb``)."""
    if isinstance(v, bool):
        raise ValueError("must be a size such as 256mb")
    if isinstance(v, int):
        v = f"{v}b"
    n, unit = _quantity(v, "256mb or 1gb")
    key = unit.lower() or "b"
    if key not in _REDIS_UNITS or n != int(n):
        raise ValueError("must be a whole number with a Redis unit: 256mb, 1gb (or 256Mi, 1Gi)")
    suffix, factor = _REDIS_UNITS[key]
    if n * factor < 1024 ** 2:
        raise ValueError(f"is {int(n * factor)} bytes; give a unit, e.g. {int(n)}mb")
    return str(int(n)) if suffix == "b" else f"{int(n)}{suffix}"


def redis_bytes(value: str) -> int:
    n, unit = _quantity(value, "256mb")
    return int(n) * _REDIS_UNITS[unit.lower() or "b"][1]


_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _seconds(v: object) -> object:
    """``90``, ``"90"``, ``"15s"``, ``"1m"``, ``"1m30s"``, ``"2h"`` → whole seconds."""
    if isinstance(v, bool):
        raise ValueError("must be seconds or a duration such as 15s or 1m")
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if not isinstance(v, str):
        return v  # ints (and bad types, which the int check reports)
    text = v.strip().lower().replace(" ", "")
    if text.isdigit():
        return int(text)
    m = _DURATION_RE.match(text)
    if not text or not m:
        raise ValueError("must be whole seconds or a duration such as 15s, 1m or 1m30s")
    h, mins, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mins * 60 + s


def _percent(v: object) -> object:
    """``70``, ``"70"``, ``"70%"`` → 70."""
    if isinstance(v, str) and v.strip().endswith("%"):
        return v.strip()[:-1].strip()
    return v


_PROM_DURATION_RE = re.compile(r"^(\d+(ms|[smhdwy]))+$")
_DURATION_WORDS = {"year": "y", "week": "w", "day": "d", "hour": "h", "minute": "m", "second": "s"}


def _prometheus_duration(v: object) -> str:
    """Prometheus retention: ``15d``, ``2w``, ``1y``, ``12h``; ``15 days`` → ``15d``."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"has no unit; write {v:g}d (days), {v:g}w or {v:g}h")
    text = str(v).strip()
    m = re.fullmatch(r"(\d+)\s*([A-Za-z]+?)s?", text)
    if m and m.group(2).lower() in _DURATION_WORDS:
        return f"{m.group(1)}{_DURATION_WORDS[m.group(2).lower()]}"
    if not _PROM_DURATION_RE.match(text):
        raise ValueError("must be a Prometheus duration such as 15d, 2w, 1y or 12h")
    return text


# Cron as both Kubernetes (robfig/cron standard parser) and supercronic read it.
_CRON_MACROS = {
    "@yearly": "@yearly", "@annually": "@yearly", "@monthly": "@monthly", "@weekly": "@weekly",
    "@daily": "@daily", "@midnight": "@daily", "@hourly": "@hourly",
}
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def _cron_value(text: str, lo: int, hi: int, names: tuple[str, ...], field: str) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + lo
    if not text.isdigit():
        raise ValueError(f"{field} {text!r} is not a number")
    n = int(text)
    if field == "day of week" and n == 7:
        raise ValueError("day of week 7: write 0 for Sunday (Kubernetes reads 0-6)")
    if not lo <= n <= hi:
        raise ValueError(f"{field} {n} is outside {lo}-{hi}")
    return n


def _cron(v: object) -> str:
    """A 5-field cron schedule (minute hour day-of-month month day-of-week) or @daily/@hourly/..."""
    if not isinstance(v, str):
        raise ValueError("must be a cron schedule in quotes, such as '0 2 * * *'")
    text = " ".join(v.split())
    if text.lower() in _CRON_MACROS:
        return _CRON_MACROS[text.lower()]
    fields = text.split(" ")
    if len(fields) == 6:
        raise ValueError("has 6 fields; Kubernetes reads 5 (minute hour day month weekday): drop the seconds")
    if len(fields) != 5:
        raise ValueError("must be a 5-field cron schedule (minute hour day month weekday) such as '0 2 * * *', "
                         "or @daily / @hourly / @weekly / @monthly")
    for part, (field, lo, hi, names) in zip(fields, _CRON_FIELDS):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) < 1):
                raise ValueError(f"{field} step {step!r} must be a whole number of at least 1")
            if base in ("*", "?"):
                if base == "?" and field not in ("day of month", "day of week"):
                    raise ValueError(f"'?' is allowed in day of month / day of week only, not in {field}")
                continue
            first, _, last = base.partition("-")
            a = _cron_value(first, lo, hi, names, field)
            if last and _cron_value(last, lo, hi, names, field) < a:
                raise ValueError(f"{field} range {base!r} runs backwards")
    return text


#: A volume or memory size as a Kubernetes binary quantity: ``10Gi`` (``10GB`` is refused with "write 10Gi").
Size = Annotated[str, BeforeValidator(_binary_size)]
Memory = Annotated[str, BeforeValidator(_binary_size)]
Cpu = Annotated[str, BeforeValidator(_cpu)]
JvmSize = Annotated[str, BeforeValidator(_jvm_size)]
Seconds = Annotated[int, BeforeValidator(_seconds)]
Percent = Annotated[int, BeforeValidator(_percent)]

#!/usr/bin/env python3
"""Reads `cargo bench` output (Criterion).

As a script: prints bench.py arguments, one per line: --hash-ms (one
default-parameter argon2id verify) and --parallel-hashes-per-s (one verify
per core at once). bench.py imports `estimates` to list every result.
"""
import re
import sys

SCALE_MS = {"s": 1000, "ms": 1, "µs": 1e-3, "us": 1e-3, "ns": 1e-6, "ps": 1e-9}
RESULT = re.compile(
    r"^([a-z_0-9]+/[^\n]*?)[ \t]*\n?[ \t]*time:\s*\[\S+\s+\S+\s+(\S+)\s+(\S+)\s+\S+\s+\S+\]"
    r"(?:[ \t]*\n[ \t]*thrpt:\s*\[\S+\s+\S+\s+(\S+)\s+(\S+)\s+\S+\s+\S+\])?",
    re.M,
)


def estimates(text: str) -> list[dict]:
    """Every Criterion result: name, time estimate (ms), throughput (/s)."""
    out = []
    for m in RESULT.finditer(text):
        name, value, unit = m.group(1).strip(), float(m.group(2)), m.group(3)
        if unit not in SCALE_MS:
            continue
        r = {"name": name, "ms": value * SCALE_MS[unit]}
        if m.group(4):
            mult = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6}.get(m.group(5))
            if mult:
                r["per_s"] = float(m.group(4)) * mult
        out.append(r)
    return out


def main() -> None:
    text = open(sys.argv[1], errors="replace").read()
    for r in estimates(text):
        if r["name"].startswith("password/verify_blocking (m="):
            print("--hash-ms")
            print(r["ms"])
        elif r["name"].startswith("password_parallel/") and "per_s" in r:
            print("--parallel-hashes-per-s")
            print(r["per_s"])


if __name__ == "__main__":
    main()

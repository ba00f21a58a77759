"""The ``pysm`` command line (also ``python -m pysm``)."""

from __future__ import annotations

import argparse
from typing import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pysm", description="pysm: stream analytics on NVIDIA GPUs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    doc = sub.add_parser("doctor", help="report the build, driver, GPUs, NVDEC/NVENC, PyAV and inference backends")
    doc.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pysm`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from pysm import doctor

        return doctor.main(as_json=args.json)
    parser.print_help()
    return 2

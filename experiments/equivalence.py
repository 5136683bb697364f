"""Appendix B: every spike pattern of a LIF under constant input, with the exact input interval.

    python experiments/equivalence.py                       # the paper's table: soft reset, τ=2, V_th=1, T=4
    python experiments/equivalence.py --T 6 --reset hard --no-decay_input

Prints a markdown table and writes it with the settings to JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

from snnjax.checks import check_args, integer, number
from snnjax.cli.hugepages import restart_with_hugepages
from snnjax.equivalence import as_fraction, constant_input_patterns, markdown_table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--T", type=int, default=4, help="time steps (default 4)")
    p.add_argument("--tau", type=float, default=2.0, help="membrane time constant, > 1 (default 2)")
    p.add_argument("--v_threshold", type=float, default=1.0)
    p.add_argument(
        "--reset",
        choices=("soft", "hard"),
        default="soft",
        help="soft: subtract V_th (the paper's); hard: set V to --v_reset",
    )
    p.add_argument("--v_reset", type=float, default=0.0, help="reset potential of the hard reset")
    p.add_argument("--decay_input", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="JSON output (default results/equivalence_T{T}_tau{tau}_{reset}.json)",
    )
    args = p.parse_args(argv)
    check_args(p, args, {"T": integer(1), "tau": number(1, low_open=True)})
    return args


def _json_bound(x: float) -> dict | None:
    return None if math.isinf(x) else {"value": x, "exact": as_fraction(x)}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    settings = {
        "T": args.T,
        "tau": args.tau,
        "v_threshold": args.v_threshold,
        "reset": args.reset,
        "v_reset": None if args.reset == "soft" else args.v_reset,
        "decay_input": args.decay_input,
    }
    intervals = constant_input_patterns(
        T=args.T, tau=args.tau, v_threshold=args.v_threshold, v_reset=settings["v_reset"], decay_input=args.decay_input
    )
    table = markdown_table(intervals)
    print(table)
    result = {
        "settings": settings,
        "patterns": [
            {
                "pattern": iv.pattern,
                "spikes": iv.spike_count,
                "lower": _json_bound(iv.lower),
                "upper": _json_bound(iv.upper),
            }
            for iv in intervals
        ],
        "markdown": table,
    }
    out = args.out or pathlib.Path("results") / (
        f"equivalence_T{args.T}_tau{args.tau:g}_{args.reset}{'' if args.decay_input else '_nodecayinput'}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and json.loads(out.read_text()) != json.loads(json.dumps(result)):
        sys.exit(f"error: {out} exists with different content; pass another --out or remove it")
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    restart_with_hugepages()
    main()

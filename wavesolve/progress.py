"""Progress bars of stepping runs (tqdm on stderr), whose rate and ETA leave out the first steps'
warm-up (compiling the kernels: up to a minute the first time)."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm


def step_bar(total: int, label: str, enabled: bool) -> tqdm:
    """A bar of ``total`` steps named ``label``; a no-op unless ``enabled``."""
    return tqdm(total=total, unit="step", disable=not enabled, desc=label, dynamic_ncols=True, file=sys.stderr)


def warmed_up(bar: tqdm, done: int) -> None:
    """Count ``done`` steps, the warm-up, without timing them: the bar's clock, rate and ETA start
    here (the elapsed time too). Call it instead of the first update; the bar shows the count at
    its next update, timed from here."""
    bar.reset(total=bar.total)
    bar.n = bar.last_print_n = bar.initial = done

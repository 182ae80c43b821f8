"""Progress bars: the rate and ETA leave out the warm-up (compiling the kernels)."""
from __future__ import annotations

import time

from wavesolve.progress import step_bar, warmed_up


def test_the_rate_counts_from_the_end_of_the_warm_up():
    """10 steps in 1 s of 'compiling', then 30 in about 0.15 s: after ``warmed_up`` the bar's rate
    is that of the second stretch (about 200 steps/s), not the whole run's (about 35), and the count
    is kept. The bound, 80 steps/s, allows the second stretch to take up to 0.37 s on a busy
    machine; with an update instead of ``warmed_up`` the rate would be at most 40/1.15 s."""
    bar = step_bar(1000, "test", True)
    time.sleep(1.0)
    warmed_up(bar, 10)
    assert bar.n == 10
    time.sleep(0.15)
    bar.update(30)
    rate = bar.format_dict["rate"]
    bar.close()
    assert bar.n == 40 and rate is not None and rate > 80, rate

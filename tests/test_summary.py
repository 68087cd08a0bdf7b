"""Sweep plots a reviewer can read: axis titles in words, units chosen by the
size of the values, plain CPU counts on a log axis."""

from __future__ import annotations

import pytest

from smpvm.studies.summary import axis_scale, axis_title
from smpvm.studies.sweep import load_config, run_sweep


@pytest.mark.parametrize("metric, title", [
    ("lock.the lock.wait_mean_ns", "the lock: mean wait"),
    ("lock.pa_lock[3].utilization", "pa_lock[3]: utilisation"),
    ("lock.cma.hold_p99_ns", "cma: 99th-percentile hold time"),
    ("acquisitions_per_us", "acquisitions per µs"),
    ("alloc_latency_p99_ns", "alloc latency p99"),
    ("cpus", "CPUs"),
])
def test_axis_titles_are_words(metric, title):
    assert axis_title(metric) == title


@pytest.mark.parametrize("values, unit", [
    ([5, 800], "ns"), ([900, 1500], "µs"), ([2.5e6], "ms"), ([1e9, 3e9], "s")])
def test_time_units_follow_the_size_of_the_values(values, unit):
    scale, got = axis_scale("lock.x.wait_mean_ns", values)
    assert got == unit
    # the largest value reads between 1 and 1000 of its unit
    assert 1 <= max(values) / scale < 1000


def test_utilisation_is_a_percentage_and_rates_stay_as_they_are():
    assert axis_scale("lock.x.utilization", [0.5]) == (0.01, "%")
    assert axis_scale("acquisitions_per_us", [3.0]) == (1.0, "")


def test_plots_have_word_titles_and_plain_cpu_ticks(monkeypatch, tmp_path):
    from matplotlib.figure import Figure
    from test_sweep import QUEUE_STUDY, write_study
    text = QUEUE_STUDY.format(acquisitions=5).replace(
        "cpus = [1, 2, 3]", "cpus = [1, 2, 4, 8]").replace(
        'theory = "machine_repairman"', 'theory = "machine_repairman"\nlogx = true')
    figures = []
    save = Figure.savefig

    def keep(fig, *a, **kw):
        figures.append(fig)
        return save(fig, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", keep)
    run_sweep(load_config(write_study(tmp_path, text)), str(tmp_path / "out"), workers=1)
    axes = {fig.axes[0].get_ylabel(): fig.axes[0] for fig in figures}
    assert set(axes) == {"the lock: mean wait (ns)", "the lock: utilisation (%)",
                         "acquisitions per µs"}
    for ax in axes.values():
        assert ax.get_xlabel() == "CPUs"
        ax.figure.canvas.draw()
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks == ["1", "2", "4", "8"]
    # utilisation is drawn in percent: the points lie between 0 and 100, not 0 and 1
    ys = [y for line in axes["the lock: utilisation (%)"].get_lines() for y in line.get_ydata()]
    assert max(ys) > 1 and max(ys) <= 100

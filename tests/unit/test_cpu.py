"""inputs.cpu on recorded /proc/stat readings: Telegraf's percent arithmetic."""

from __future__ import annotations

import os

import pytest

from plugins.inputs.cpu import Cpu

CASE = "two-cpus-guest"
EXPECTED_USAGE = {
    "usage_user": 10.0,
    "usage_system": 10.0,
    "usage_idle": 60.0,
    "usage_nice": 1.0,
    "usage_iowait": 4.0,
    "usage_irq": 1.0,
    "usage_softirq": 1.0,
    "usage_steal": 2.0,
    "usage_guest": 10.0,
    "usage_guest_nice": 1.0,
}


def two_gathers(host_step, cpu: Cpu):
    host_step(CASE, 0)
    first = list(cpu.gather())
    host_step(CASE, 1)
    second = list(cpu.gather())
    return first, second


def by_cpu(metrics):
    return {m.tags["cpu"]: m for m in metrics}


def test_first_gather_reports_no_usage(host_step):
    host_step(CASE, 0)
    assert list(Cpu().gather()) == []


def test_usage_moves_guest_out_of_user_and_nice_so_states_sum_to_100(host_step):
    _, second = two_gathers(host_step, Cpu())
    cpu0 = by_cpu(second)["cpu0"]
    assert cpu0.fields == pytest.approx(EXPECTED_USAGE)
    assert set(cpu0.fields) == set(EXPECTED_USAGE)
    assert sum(cpu0.fields.values()) == pytest.approx(100.0)


def test_total_line_is_tagged_cpu_total(host_step):
    _, second = two_gathers(host_step, Cpu())
    total = by_cpu(second)["cpu-total"]
    assert total.name == "cpu"
    assert total.fields == pytest.approx(EXPECTED_USAGE)


def test_cpu_whose_counters_went_backwards_is_skipped(host_step):
    _, second = two_gathers(host_step, Cpu())
    assert set(by_cpu(second)) == {"cpu0", "cpu-total"}
    assert all(value >= 0 for m in second for value in m.fields.values())


def test_percpu_false_reports_only_the_total(host_step):
    _, second = two_gathers(host_step, Cpu(percpu=False))
    assert [m.tags["cpu"] for m in second] == ["cpu-total"]


def test_totalcpu_false_reports_only_each_cpu(host_step):
    _, second = two_gathers(host_step, Cpu(totalcpu=False))
    assert [m.tags["cpu"] for m in second] == ["cpu0"]


def test_report_active_adds_usage_active(host_step):
    _, second = two_gathers(host_step, Cpu(report_active=True))
    assert by_cpu(second)["cpu0"].fields["usage_active"] == pytest.approx(40.0)


def test_collect_cpu_time_reports_seconds_from_the_first_gather(host_step):
    ticks = os.sysconf("SC_CLK_TCK")
    first, _ = two_gathers(host_step, Cpu(collect_cpu_time=True, report_active=True))
    cpu0 = by_cpu(first)["cpu0"]
    assert len(cpu0.fields) == 11
    assert cpu0.fields["time_user"] == pytest.approx(500 / ticks)
    assert cpu0.fields["time_guest_nice"] == pytest.approx(25 / ticks)
    total = 500 + 250 + 50 + 100 + 5 + 10 + 15 + 4000  # user…steal, idle; guest is in user
    assert cpu0.fields["time_active"] == pytest.approx((total - 4000) / ticks)
    assert not any(name.startswith("usage_") for name in cpu0.fields)


def test_cpu_time_and_usage_are_separate_metrics_as_in_telegraf(host_step):
    _, second = two_gathers(host_step, Cpu(collect_cpu_time=True))
    cpu0 = [m for m in second if m.tags["cpu"] == "cpu0"]
    assert [sorted({name.split("_")[0] for name in m.fields}) for m in cpu0] == [
        ["time"],
        ["usage"],
    ]
    assert cpu0[0].time_ns == cpu0[1].time_ns


def test_each_cpu_comes_before_the_total(host_step):
    first, _ = two_gathers(host_step, Cpu(collect_cpu_time=True))
    assert [m.tags["cpu"] for m in first] == ["cpu0", "cpu1", "cpu-total"]


def test_fields_are_in_sorted_order(host_step):
    _, second = two_gathers(host_step, Cpu(collect_cpu_time=True))
    for metric in second:
        assert list(metric.fields) == sorted(metric.fields)

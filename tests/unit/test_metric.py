"""Metric: one class whether Python code made it or the parser did (and kept its tags and
fields in the native core until asked); both behave as the dataclass the agent had."""

from __future__ import annotations

import pickle
import threading

import pytest

from agent.metric import Metric, UInt
from plugins.parsers.influx import InfluxParser
from plugins.serializers.influx import InfluxSerializer

LINE = b'cpu,host=a,cpu=cpu0 f=1.5,i=-2i,u=3u,b=true,s="x y" 7\n'


def parsed() -> Metric:
    (metric,), errors = InfluxParser().parse(LINE)
    assert not errors
    return metric


def made() -> Metric:
    fields = {"f": 1.5, "i": -2, "u": UInt(3), "b": True, "s": "x y"}
    return Metric("cpu", {"cpu": "cpu0", "host": "a"}, fields, 7)


def test_a_parsed_metric_equals_the_metric_made_from_python_with_the_same_parts():
    assert parsed() == made()
    assert parsed() != Metric("cpu", {"cpu": "cpu0", "host": "a"}, {"f": 1.5}, 7)
    assert type(parsed().fields["u"]) is UInt
    assert repr(parsed()) == repr(made())
    assert parsed().identity() == made().identity()


@pytest.mark.parametrize("make", [parsed, made])
def test_a_copy_is_a_metric_of_its_own(make):
    original = make()
    copied = original.copy()
    copied.tags["dc"] = "eu"
    copied.fields["f"] = 9.0
    copied.name = "other"
    assert original == made()
    assert copied.tags == {"cpu": "cpu0", "host": "a", "dc": "eu"}


@pytest.mark.parametrize("make", [parsed, made])
def test_tags_and_fields_asked_for_are_the_metrics_own_dicts(make):
    metric = make()
    metric.tags["dc"] = "eu"
    del metric.fields["s"]
    assert metric.tags is metric.tags
    assert InfluxSerializer().serialize(metric) == (
        b"cpu,cpu=cpu0,dc=eu,host=a f=1.5,i=-2i,u=3i,b=true 7\n"
    )


@pytest.mark.parametrize("make", [parsed, made])
def test_missing_tags_are_added_and_present_ones_kept(make):
    metric = make()
    metric.add_missing_tags([("host", "other"), ("dc", "eu")])
    assert metric.get_tag("host") == "a" and metric.get_tag("dc") == "eu"
    assert metric.get_tag("rack") is None
    assert metric.tags == {"cpu": "cpu0", "host": "a", "dc": "eu"}


def test_has_fields_and_time_default():
    assert parsed().has_fields()
    assert not Metric("m", {}, {}).has_fields()
    assert Metric("m", {}, {"v": 1}).time_ns > 1_600_000_000 * 10**9


@pytest.mark.parametrize("make", [parsed, made])
def test_a_metric_pickles_to_an_equal_metric(make):
    assert pickle.loads(pickle.dumps(make())) == made()


def test_metrics_are_unhashable_as_the_dataclass_was():
    with pytest.raises(TypeError):
        hash(parsed())


def test_threads_reading_shared_parsed_metrics_see_the_same_dicts():
    """Outputs in their own threads share a gathered metric: one may make its dicts while
    another serializes it."""
    (metrics, errors) = InfluxParser().parse(LINE * 2000)
    assert not errors
    failures: list[BaseException] = []

    def read(serialize: bool) -> None:
        try:
            for metric in metrics:
                if serialize:
                    InfluxSerializer().serialize(metric)
                else:
                    assert metric.tags["host"] == "a" and metric.fields["f"] == 1.5
        except BaseException as error:  # reported below, with the thread's own traceback lost
            failures.append(error)

    threads = [threading.Thread(target=read, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(metric.tags is metric.tags for metric in metrics[:10])

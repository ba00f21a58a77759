"""The switch interval a running pipeline uses (pysm.pipeline.gil)."""

import sys

import pytest

from pysm.pipeline import gil


@pytest.fixture(autouse=True)
def restore_interval(monkeypatch):
    before = sys.getswitchinterval()
    monkeypatch.delenv("PYSM_SWITCH_INTERVAL", raising=False)
    yield
    sys.setswitchinterval(before)


def test_python_default_is_lowered():
    sys.setswitchinterval(gil.PYTHON_DEFAULT)
    assert gil.tune_switch_interval() == pytest.approx(gil.PIPELINE_INTERVAL)
    assert sys.getswitchinterval() == pytest.approx(gil.PIPELINE_INTERVAL)


def test_an_application_choice_is_kept():
    sys.setswitchinterval(0.002)
    assert gil.tune_switch_interval() == pytest.approx(0.002)


@pytest.mark.parametrize("env, want", [("keep", gil.PYTHON_DEFAULT), ("0.001", 0.001),
                                       ("fast", gil.PYTHON_DEFAULT), ("-1", gil.PYTHON_DEFAULT)])
def test_environment_override(monkeypatch, env, want):
    sys.setswitchinterval(gil.PYTHON_DEFAULT)
    monkeypatch.setenv("PYSM_SWITCH_INTERVAL", env)
    assert gil.tune_switch_interval() == pytest.approx(want)


def test_a_running_pipeline_applies_it():
    import pysm

    sys.setswitchinterval(gil.PYTHON_DEFAULT)
    p = pysm.Pipeline("gil")
    p.add("videotestsrc", "src", {"num-buffers": 2})
    p.add("fakesink", "sink")
    p.link("src", "sink")
    p.start().wait(10)
    assert sys.getswitchinterval() == pytest.approx(gil.PIPELINE_INTERVAL)

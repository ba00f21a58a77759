"""The switch interval running pipelines and concurrent readers use (pysm.gil)."""

import sys

import pytest

from pysm import gil


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


def test_concurrent_readers_apply_it_and_a_single_one_does_not(tmp_path):
    import threading

    from codec_media import make_clip
    from pysm.codec import VideoReader

    clip = make_clip(tmp_path / "c.mp4", "h264", n=6)
    sys.setswitchinterval(gil.PYTHON_DEFAULT)
    with VideoReader(clip, "cpu") as r:
        assert len(list(r)) == 6
    assert sys.getswitchinterval() == pytest.approx(gil.PYTHON_DEFAULT)

    inside = threading.Barrier(2)
    seen = []

    def read():
        with VideoReader(clip, "cpu") as r:
            for i, _ in enumerate(r):
                if i == 0:
                    inside.wait(10)  # both readers iterate at once
                    seen.append(sys.getswitchinterval())

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(seen) == 2
    assert sys.getswitchinterval() == pytest.approx(gil.PIPELINE_INTERVAL)

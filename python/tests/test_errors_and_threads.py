"""Errors as exceptions with the CLI's messages, bad files as error results, two engines running at
once in two Python threads, and Ctrl-C stopping a long run cleanly."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest

import fervid

from conftest import run_cli


def test_bad_weights_raise_weights_error_with_the_clis_message(cli, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{nonsense")
    want = run_cli(cli, "inspect", bad, check=False).stderr.strip().removeprefix("fervid: error: ")
    with pytest.raises(fervid.WeightsError) as e:
        fervid.Engine(bad)
    assert str(e.value) == want
    with pytest.raises(fervid.WeightsError, match="cannot open"):
        fervid.Engine(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "gpu"}, "device=gpu: expected auto, cpu or cuda"),
    ({"precision": "fp8"}, "precision=fp8: expected fp32, tf32, fp16, bf16 or int8"),
    ({"device": "cpu", "precision": "fp16"}, "precision=fp16: the CPU backend computes in fp32, bf16 or int8"),
    ({"batch": 0}, "batch=0: must be at least 1"),
])
def test_bad_engine_options_raise_option_error(tiny_weights, kwargs, message):
    with pytest.raises(fervid.OptionError) as e:
        fervid.Engine(tiny_weights, **kwargs)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)


def test_bad_run_options_raise_and_bad_files_are_results(tiny_weights, data, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(2000))
    with fervid.Engine(tiny_weights, device="cpu", batch=4) as engine:
        for kwargs, message in [({"stride": 0}, "stride=0: must be at least 1"),
                                ({"batch": 5}, "batch size 5 outside 1..4"),
                                ({"crop": "middle"}, "crop=middle: expected full, center"),
                                ({"vote": "loudest"}, "unknown vote 'loudest'")]:
            with pytest.raises(fervid.OptionError, match=message):
                engine.classify(junk, **kwargs)
        results = engine.classify([junk, data / "video/vtest.avi", tmp_path / "gone.mp4"],
                                  max_frames=2)
    assert [r.ok for r in results] == [False, True, False]
    assert results[0].status.startswith("error: cannot open video")
    assert results[0].error.startswith(str(junk) + ": cannot open video")
    assert results[0].label is None and results[0].votes == {}
    assert results[2].status == "error: no such file or directory"


def test_no_gpu_means_device_error_or_a_notice(tiny_weights):
    if fervid.cuda_built():
        try:
            fervid.Engine(tiny_weights, device="cuda").close()
            pytest.skip("a GPU is present")
        except fervid.DeviceError as e:
            assert str(e).startswith("device=cuda: no CUDA device")
    with pytest.warns(fervid.Notice, match="using the CPU backend"):
        fervid.Engine(tiny_weights, device="auto").close()


def test_untrained_weights_warn_once(tiny_weights, tmp_path):
    with pytest.warns(fervid.UntrainedWeights, match="holds untrained weights") as caught:
        engine = fervid.Engine(tiny_weights, device="cpu")
    assert engine.untrained
    assert len([w for w in caught if w.category is fervid.UntrainedWeights]) == 1
    engine.close()
    # The same file without make-weights' mark (the header rewritten to its old length, padded
    # with spaces) loads without the warning.
    raw = tiny_weights.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    del header["__metadata__"]["untrained"]
    plain = tmp_path / "trained.safetensors"
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    plain.write_bytes(raw[:8] + text.ljust(n) + raw[8 + n:])
    with warnings.catch_warnings():
        warnings.simplefilter("error", fervid.UntrainedWeights)
        engine = fervid.Engine(plain, device="cpu")
    assert not engine.untrained
    engine.close()


def test_two_threads_with_their_own_engines_run_at_the_same_time(tiny_weights, data, tmp_path):
    # Each run reports when it handed over each result; with the GIL held during a run, the
    # second could not hand over anything before the first had finished.
    clips = [data / "video/astronaut-720p.mp4"] * 6
    times = {0: [], 1: []}
    outcome = {}

    def run(k):
        with fervid.Engine(tiny_weights, device="cpu", threads=1, batch=4) as engine:
            got = engine.classify(clips, max_frames=30, frames=True,
                                  progress=lambda p: times[k].append(time.monotonic()))
        outcome[k] = [(r.label, r.votes) for r in got]

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome[0] == outcome[1]  # two engines, the same weights and inputs: the same answers
    assert len(times[0]) == len(times[1]) == 6
    first, second = sorted((times[0], times[1]), key=lambda t: t[-1])
    assert second[0] < first[-1], "one run handed over nothing until the other had finished"


def test_ctrl_c_stops_a_long_run_cleanly(tiny_weights, data, tmp_path):
    script = tmp_path / "long.py"
    script.write_text(textwrap.dedent(f"""
        import signal, sys, fervid
        # Python raises KeyboardInterrupt only where SIGINT was not ignored when it started (a
        # test run in the background of a shell without job control inherits it ignored).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with fervid.Engine({str(tiny_weights)!r}, device="cpu") as engine:
            try:
                for r in engine.iter_classify([{str(data / "video/vtest.avi")!r}] * 500):
                    print("result", flush=True)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(3)
        """))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert p.stdout.readline().strip() == "result"  # running
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 3, out
    assert out.strip().endswith("interrupted")

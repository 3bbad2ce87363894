"""The benchmark entry point runs (its figures are printed, never asserted)."""

import pytest

from minidl.bench import __main__ as bench
from minidl.bench import startup


def test_bench_autograd_section_prints_its_table(capsys):
    bench.main(["autograd", "--quick"])
    out = capsys.readouterr().out
    assert "per-node cost" in out and "MLP training step" in out and "AdamW step" in out


def test_bench_rejects_an_unknown_section():
    with pytest.raises(SystemExit):
        bench.main(["no-such-section"])


def test_startup_snippets_run_in_a_fresh_interpreter():
    assert startup._run(startup.IMPORT_TIME)[0] > 0
    first, second = startup._run(startup.FIRST_STEPS)
    assert first > 0 and second > 0

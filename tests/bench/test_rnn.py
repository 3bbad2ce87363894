"""The recurrent benchmark section runs and prints its table (no timing is asserted)."""

from minidl.bench import rnn


def test_bench_rnn_quick_prints_the_lstm_row_and_its_floor(capsys):
    rnn.run(quick=True)
    out = capsys.readouterr().out
    assert "nn.LSTM" in out and "matmul floor" in out and " ms" in out

"""minidl.cuda: PyTorch's device check picks the CPU."""

import minidl


def test_no_gpu():
    assert minidl.cuda.is_available() is False and minidl.cuda.device_count() == 0
    device = minidl.device("cuda" if minidl.cuda.is_available() else "cpu")
    assert minidl.zeros(2, device=device).device == device
    assert minidl.cuda.manual_seed(0) is None and minidl.cuda.manual_seed_all(0) is None

"""minidl.data: datasets, the DataLoader, and data that needs no download.

    from minidl.data import DataLoader, TensorDataset, digits
    x, y = digits("train")                              # shipped with minidl
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)

- ``dataset``: Dataset, TensorDataset, Subset, random_split
- ``loader``: DataLoader, default_collate
- ``digits``: the UCI 8x8 digits shipped in the package (CC BY 4.0, see DIGITS_LICENSE.txt)
- ``idx`` / ``mnist``: IDX files, MNIST and Fashion-MNIST from a folder (download on request)
- ``transforms``: resize_bilinear (PyTorch's align_corners=False bilinear resize)
- ``shapes``: synthetic detection / segmentation / keypoint images generated from a seed
- ``sequences``: sequence tasks (adding, copy, parity, sine waves) and a text corpus
- ``factors``: images from known factors (shape, size, colour, position) and the MIG score

Note: ``minidl.data.digits`` and ``minidl.data.mnist`` below are the functions;
their modules are ``sys.modules['minidl.data.digits']`` and ``['minidl.data.mnist']``.
"""

# ruff: noqa: F401
from minidl.data.dataset import Dataset, Subset, TensorDataset, random_split
from minidl.data.digits import DigitsDataset, digits
from minidl.data.factors import factors_dataset
from minidl.data.idx import read_idx, write_idx
from minidl.data.loader import DataLoader, default_collate
from minidl.data.mnist import FASHION_CLASSES, mnist
from minidl.data.sequences import (
    CharVocab,
    adding_problem,
    batchify,
    bptt_batches,
    copy_task,
    parity,
    sine_waves,
    text_corpus,
)
from minidl.data.shapes import DigitsDetection, ShapesDataset, StickFigures, detection_collate
from minidl.data.transforms import resize_bilinear

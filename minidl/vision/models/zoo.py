"""The detection benchmark the lessons share: one data split, and trained detectors saved to disk.

Lessons 10 (YOLO), 11 (SSD, RetinaNet) and 16 (DETR, CenterNet) train on the same
synthetic shapes and are scored on one fixed test set, so that lesson 11 can put
every detector into one speed / accuracy table:

    splits = shapes_splits(quick=args.quick, seed=args.seed)
    trained = yolo_v1_recipe(splits.train)
    save_detector(trained, args.out / "yolo_v1.npz", splits.train)
    ...
    trained = load_detector(yolo_v1_recipe, splits.train, "runs/10_yolo/yolo_v1.npz")

The test set does not depend on ``seed``: every lesson and every seed meet the same
500 images. A saved detector is its recipe's model rebuilt untrained (``epochs=0``,
the same seed and options, so the same architecture and, for YOLO v2, the same
k-means priors) with the saved weights loaded; it is only loaded when it was
trained on the same training set (same size, seed and image size).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import minidl
from minidl.data.shapes import ShapesDataset

TEST_SEED = 10_000        # one test set for every lesson and every --seed


@dataclass
class Splits:
    train: ShapesDataset      # to fit the weights
    val: ShapesDataset        # to make choices (thresholds, which variant): never the test set
    test: ShapesDataset       # to report, once


def shapes_splits(quick: bool = False, seed: int = 0, train_images: int = 4000) -> Splits:
    """The shapes benchmark: ``train_images`` training images (from ``seed``), 300 validation
    images (from ``seed + 5000``) and the 500 test images (from ``TEST_SEED``); 64 x 64,
    1-4 objects of 4 classes. ``quick``: 160 / 40 / 40 images."""
    sizes = (160, 40, 40) if quick else (train_images, 300, 500)
    return Splits(ShapesDataset(sizes[0], seed=seed), ShapesDataset(sizes[1], seed=seed + 5000),
                  ShapesDataset(sizes[2], seed=TEST_SEED))


def data_key(dataset) -> list:
    """What identifies a training set of ``shapes_splits``: [images, seed, image size]."""
    return [len(dataset), int(dataset.seed), int(dataset.image_size)]


def save_detector(trained, path, train_set) -> Path:
    """Save a recipe's ``TrainedDetector``: its weights, training time and training set's key."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    minidl.save({"name": trained.name, "state_dict": trained.model.state_dict(),
                 "train_seconds": float(trained.train_seconds), "data": data_key(train_set)},
                path)
    return path


def load_detector(recipe, train_set, path, seed: int = 0, **options):
    """The detector saved at ``path`` by ``save_detector``, rebuilt with ``recipe(train_set,
    epochs=0, seed=seed, **options)``; None when there is no file or it was trained on
    another training set (then train it instead)."""
    path = Path(path)
    if not path.is_file():
        return None
    saved = minidl.load(path)
    if list(saved["data"]) != data_key(train_set):
        return None
    trained = recipe(train_set, epochs=0, seed=seed, **options)
    trained.model.load_state_dict(saved["state_dict"])
    trained.train_seconds = saved["train_seconds"]
    return trained

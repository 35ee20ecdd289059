# Copyright 2026 The macrl-hf Authors. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Where images come from: a Hub dataset, a local dataset directory, image folders, or the built-in offline demo."""

import logging
import os
from dataclasses import dataclass

from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, load_dataset, load_from_disk

logger = logging.getLogger(__name__)

IMAGE_COLUMN_CANDIDATES = ("image", "img")
LABEL_COLUMN_CANDIDATES = ("label", "labels", "fine_label")
DEMO_NAME = "sklearn-digits (built-in demo)"


@dataclass
class ImageData:
    """The splits plus the column names found in them."""

    train: Dataset
    validation: Dataset | None
    image_column: str
    label_column: str | None
    name: str


def demo_digits() -> Dataset:
    """The 1,797 handwritten digits (8x8, 17 grey levels) that scikit-learn ships, as an image dataset."""
    import numpy as np
    from PIL import Image as PILImage
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.clip(digits.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    images = [PILImage.fromarray(p, mode="L") for p in pixels]
    features = Features({"image": Image(), "label": ClassLabel(names=[str(i) for i in range(10)])})
    return Dataset.from_dict({"image": images, "label": digits.target.tolist()}, features=features)


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else that does not exist is a mistyped local path.
    return name.startswith((".", "/", "~")) or name.count("/") > 1


def _load_named(name: str, config_name: str | None, cache_dir: str | None) -> DatasetDict:
    if os.path.isdir(name):
        if os.path.isfile(os.path.join(name, "dataset_dict.json")) or os.path.isfile(os.path.join(name, "state.json")):
            try:
                loaded = load_from_disk(name)  # written by save_to_disk
            except (IndexError, ValueError) as err:  # datasets fails obscurely on a dataset with no rows
                raise ValueError(f"--dataset_name {name!r}: cannot read this saved dataset (is it empty?): {err}") from err
            return loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
        try:
            return load_dataset(name, config_name, cache_dir=cache_dir)
        except ValueError as err:  # e.g. a split with no rows: name the dataset in the message
            raise ValueError(f"--dataset_name {name!r}: {err} (is the dataset empty?)") from err
    if _looks_like_path(name):
        raise FileNotFoundError(f"--dataset_name {name!r}: no such directory")
    return load_dataset(name, config_name, cache_dir=cache_dir)


def _load_folders(train_dir: str | None, validation_dir: str | None, cache_dir: str | None) -> DatasetDict:
    data_files = {}
    for split, folder, flag in (("train", train_dir, "--train_dir"), ("validation", validation_dir, "--validation_dir")):
        if folder is None:
            continue
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{flag} {folder!r}: no such directory")
        data_files[split] = os.path.join(folder, "**")
    return load_dataset("imagefolder", data_files=data_files, cache_dir=cache_dir)


def find_column(dataset: Dataset, wanted: str | None, candidates: tuple[str, ...], what: str, flag: str) -> str | None:
    columns = dataset.column_names
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{flag}={wanted!r} is not a column of the dataset; its columns are {columns}")
        return wanted
    for name in candidates:
        if name in columns:
            return name
    if what == "image":
        raise ValueError(f"No image column found (looked for {list(candidates)}) in columns {columns}; pass {flag}")
    return None


def load_image_data(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_dir: str | None = None,
    validation_dir: str | None = None,
    image_column_name: str | None = None,
    label_column_name: str | None = None,
    train_val_split: float | None = 0.15,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    cache_dir: str | None = None,
    seed: int = 42,
) -> ImageData:
    """Load and validate the splits; every problem is a clear error raised before any training starts."""
    if dataset_name is not None:
        splits, name = _load_named(dataset_name, dataset_config_name, cache_dir), dataset_name
    elif train_dir is not None or validation_dir is not None:
        splits, name = _load_folders(train_dir, validation_dir, cache_dir), train_dir or validation_dir
    else:
        logger.warning(
            "No --dataset_name, --train_dir or --validation_dir given: using the BUILT-IN DEMO DATA, the 1,797 8x8 "
            "handwritten digits that scikit-learn ships. Point the script at real data with --dataset_name "
            "(a Hub id such as uoft-cs/cifar10, or a local dataset directory) or --train_dir/--validation_dir "
            "(folders of images)."
        )
        splits, name = DatasetDict(train=demo_digits()), DEMO_NAME

    if "train" not in splits:
        raise ValueError(f"{name}: no 'train' split (splits found: {list(splits)})")
    train = splits["train"]
    validation = next((splits[s] for s in ("validation", "val", "test") if s in splits), None)
    if validation is None and train_val_split and len(train) > 1:
        parts = train.train_test_split(test_size=train_val_split, seed=seed)
        train, validation = parts["train"], parts["test"]

    if len(train) == 0:
        raise ValueError(f"{name}: the train split is empty")
    image_column = find_column(train, image_column_name, IMAGE_COLUMN_CANDIDATES, "image", "--image_column_name")
    label_column = find_column(train, label_column_name, LABEL_COLUMN_CANDIDATES, "label", "--label_column_name")
    if validation is not None:
        for column in (image_column, label_column):
            if column is not None and column not in validation.column_names:
                raise ValueError(f"{name}: column {column!r} is in the train split but not in the validation split")
    # Shuffle before truncating (as run_mae.py): a class-sorted folder would otherwise give only its first classes.
    if max_train_samples is not None:
        train = train.shuffle(seed=seed).select(range(min(max_train_samples, len(train))))
    if validation is not None and max_eval_samples is not None:
        validation = validation.shuffle(seed=seed).select(range(min(max_eval_samples, len(validation))))
    if validation is not None and len(validation) == 0:
        validation = None
    # Decode lazily in our own transform, so that one bad file is skipped rather than fatal.
    train = train.cast_column(image_column, Image(decode=False))
    if validation is not None:
        validation = validation.cast_column(image_column, Image(decode=False))
    return ImageData(train, validation, image_column, label_column, name)


def has_class_labels(dataset: Dataset, label_column: str) -> bool:
    """True for a ClassLabel or integer column (what the kNN monitor can vote with)."""
    feature = dataset.features[label_column]
    return isinstance(feature, ClassLabel) or getattr(feature, "dtype", "").startswith(("int", "uint"))


def class_names(dataset: Dataset, label_column: str | None) -> list[str] | None:
    if label_column is None:
        return None
    feature = dataset.features[label_column]
    return list(feature.names) if isinstance(feature, ClassLabel) else None

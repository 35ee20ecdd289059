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
"""Class labels for downstream tasks: find the classes, check there is something to classify, encode them as ids."""

import logging
from dataclasses import dataclass

from datasets import ClassLabel, Dataset, Value

logger = logging.getLogger(__name__)

# Value dtypes that can name a class; floats cannot (they are more likely regression targets).
CLASS_DTYPES = ("string", "large_string", "bool") + tuple(
    f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)
)


@dataclass
class Labels:
    """The class names in id order and the column that holds the labels."""

    column: str
    names: list[str]
    is_class_label: bool  # False: raw strings / integers that `encode` turns into ids

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def encode(self, dataset: Dataset) -> Dataset:
        """`dataset` with its label column as `ClassLabel` ids (unchanged when it already is one)."""
        if self.is_class_label:
            return dataset
        index = self.label2id
        ids = [index[str(value)] for value in dataset[self.column]]
        # add_column flattens a split/select index mapping once; the images are not decoded.
        temporary = f"{self.column}__class_ids"
        encoded = dataset.add_column(temporary, ids, feature=ClassLabel(names=self.names))
        return encoded.remove_columns([self.column]).rename_column(temporary, self.column)


def _sorted_classes(values: set) -> list:
    if all(isinstance(v, int) for v in values):
        return sorted(values)  # numerically: 2 before 10
    return sorted(values, key=str)


def resolve_labels(train: Dataset, validation: Dataset | None, label_column: str | None, name: str,
                   from_folders: bool = False) -> Labels:
    """The classes of `label_column`; a `ValueError` naming the problem when there is nothing to classify."""
    if label_column is None:
        hint = (" (imagefolder labels images by their parent folder: put each class in its own sub-folder, at least "
                "two of them)" if from_folders else "")
        raise ValueError(f"{name}: no label column found (looked for 'label', 'labels', 'fine_label'; columns are "
                         f"{train.column_names}); pass --label_column_name{hint}")
    feature = train.features[label_column]
    if isinstance(feature, ClassLabel):
        if validation is not None:
            other = validation.features[label_column]
            if not isinstance(other, ClassLabel) or list(other.names) != list(feature.names):
                raise ValueError(f"{name}: the label column {label_column!r} has classes {feature.names} in the train "
                                 f"split but {getattr(other, 'names', other)} in the validation split")
        labels = Labels(label_column, list(feature.names), is_class_label=True)
        present = set(train.unique(label_column))
        splits = {"train": present}
        if validation is not None:
            splits["validation"] = set(validation.unique(label_column))
        for split, values in splits.items():
            outside = sorted((v for v in values if v is None or not 0 <= v < len(feature.names)), key=str)
            if outside:  # e.g. -1, which some datasets use for unlabelled images
                raise ValueError(f"{name}: the {split} split has label ids {outside} outside the classes "
                                 f"0..{len(feature.names) - 1} of {label_column!r} (unlabelled images?)")
        shown = [feature.names[i] for i in sorted(present)]
    else:
        if not isinstance(feature, Value) or feature.dtype not in CLASS_DTYPES:
            raise ValueError(f"{name}: the label column {label_column!r} holds {feature}, not class labels; it must be "
                             "a ClassLabel, strings or integers (pass --label_column_name to pick another column)")
        present = set(train.unique(label_column))
        values = present | (set(validation.unique(label_column)) if validation is not None else set())
        if None in values:
            raise ValueError(f"{name}: the label column {label_column!r} has missing (None) values")
        classes = _sorted_classes(values)
        names = [str(v) for v in classes]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: labels of {label_column!r} collide once written as text: {classes}")
        labels = Labels(label_column, names, is_class_label=False)
        shown = [str(v) for v in _sorted_classes(present)]
        logger.info("Label column %r is not a ClassLabel: mapped its values to ids in sorted order %s",
                    label_column, labels.id2label)
    if len(present) < 2:
        raise ValueError(f"{name}: the training split has a single class ({shown}) in the label column "
                         f"{label_column!r}; a classifier needs at least two classes")
    return labels

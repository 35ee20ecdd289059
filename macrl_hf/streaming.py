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
"""Streaming pretraining data (`--streaming`): a Hub dataset, a folder of parquet shards or of webdataset tar files,
read as a `datasets.IterableDataset` and turned into the two views on the fly, with an exact resume.

How the stream is cut, so that a resumed run sees exactly the batches an uninterrupted one would:

- each process keeps its part (`split_dataset_by_node`); each DataLoader worker plays one *role* and reads the
  shards of that role (`IterableDataset.shard`), shuffled with a seeded buffer, pass after pass (`set_epoch`);
- micro-batch j of a process comes from role j % W (W workers, or 1 without workers), as the DataLoader takes
  batches from its workers in turn; a role's k-th image gets the augmentation seeded by (seed, pass, index);
- on resume at micro-batch S, worker w plays role (w + S) % W and each role first passes over, undecoded, the
  images it had already given; so the same images come in the same order with the same augmentations, for the same
  number of processes and workers. The cost: the skipped images are read again (not decoded): fast from local
  shards, a second download when streaming from the Hub.
"""

import itertools
import logging
import os

import torch
from datasets import Dataset, Image, IterableDataset, IterableDatasetDict, load_dataset
from datasets.distributed import split_dataset_by_node

from .data import IMAGE_COLUMN_CANDIDATES, LABEL_COLUMN_CANDIDATES, find_column
from .transforms import INDEX_COLUMN

logger = logging.getLogger(__name__)


def load_streaming(dataset_name: str | None, dataset_config_name: str | None, train_dir: str | None,
                   validation_dir: str | None, cache_dir: str | None = None) -> tuple[IterableDataset, IterableDataset]:
    """(train stream, validation stream or None). A local folder of `*.parquet` or `*.tar` (webdataset) files, or a
    Hub id; `--train_dir`/`--validation_dir` are folders of such shards (or of images)."""
    if dataset_name is not None:
        if not os.path.isdir(dataset_name) and (dataset_name.startswith((".", "/", "~")) or dataset_name.count("/") > 1):
            raise FileNotFoundError(f"--dataset_name {dataset_name!r}: no such directory")
        streams = load_dataset(dataset_name, dataset_config_name, streaming=True, cache_dir=cache_dir)
    elif train_dir is not None:
        data_files = {"train": _shard_files(train_dir, "--train_dir")}
        if validation_dir is not None:
            data_files["validation"] = _shard_files(validation_dir, "--validation_dir")
        builder = "webdataset" if data_files["train"][0].endswith(".tar") else "parquet"
        streams = load_dataset(builder, data_files=data_files, streaming=True, cache_dir=cache_dir)
    else:
        raise ValueError("--streaming needs --dataset_name (a Hub id, or a folder of parquet or webdataset shards) "
                         "or --train_dir (a folder of shards)")
    if not isinstance(streams, IterableDatasetDict) or "train" not in streams:
        raise ValueError(f"{dataset_name or train_dir}: no 'train' split to stream")
    validation = next((streams[s] for s in ("validation", "val", "test") if s in streams), None)
    return streams["train"], validation


def _shard_files(folder: str, flag: str) -> list[str]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{flag} {folder!r}: no such directory")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith((".parquet", ".tar")))
    if not files:
        raise ValueError(f"{flag} {folder!r}: no .parquet or .tar shards to stream")
    return files


def stream_columns(stream: IterableDataset, image_column: str | None, label_column: str | None) -> tuple[str, str | None]:
    """The image and label columns, found as for map-style data (webdataset's `jpg`/`png` and `cls` too)."""
    columns = stream.column_names
    if columns is None:  # features unknown until read: peek at one example
        columns = list(next(iter(stream.take(1))).keys())
    probe = Dataset.from_dict({c: [] for c in columns})
    image = find_column(probe, image_column, IMAGE_COLUMN_CANDIDATES + ("jpg", "jpeg", "png", "webp"), "image",
                        "--image_column_name")
    label = find_column(probe, label_column, LABEL_COLUMN_CANDIDATES + ("cls",), "label", "--label_column_name")
    return image, label


def first_examples(stream: IterableDataset, n: int, image_column: str, label_column: str | None) -> Dataset:
    """The first `n` examples of a stream as a small map-style dataset (images kept encoded): the fixed validation
    set and kNN memory bank of a streamed run."""
    rows = list(stream.cast_column(image_column, Image(decode=False)).take(n))
    if not rows:
        raise ValueError("the stream has no examples")
    columns = [image_column] + ([label_column] if label_column else [])
    data = Dataset.from_dict({c: [row[c] for row in rows] for c in columns})
    return data.cast_column(image_column, Image(decode=False))


class StreamingViews(torch.utils.data.IterableDataset):
    """This process's endless stream of transformed examples (both views), cut as the module docstring says.

    `transform` is a seeded `ImageTransform`; `start_at(S)` (before iterating) resumes at micro-batch S.
    """

    def __init__(self, source: IterableDataset, transform, image_column: str, batch_size: int, seed: int,
                 buffer_size: int = 1000, rank: int = 0, world_size: int = 1):
        if world_size > 1:
            source = split_dataset_by_node(source, rank=rank, world_size=world_size)
        self.source = source.cast_column(image_column, Image(decode=False))  # decode in the transform: skip cheaply
        self.transform, self.image_column = transform, image_column
        self.batch_size, self.seed, self.buffer_size = batch_size, seed, buffer_size
        self.rank, self.world_size = rank, world_size
        self.start_batch = 0

    def start_at(self, micro_batch: int) -> None:
        self.start_batch = micro_batch

    def _role_stream(self, role: int, roles: int) -> IterableDataset:
        if roles == 1:
            stream = self.source
        elif self.source.num_shards >= roles:
            stream = self.source.shard(num_shards=roles, index=role)
        else:
            raise ValueError(f"--dataloader_num_workers {roles}: the stream has only {self.source.num_shards} shard(s) "
                             f"for this process; use at most that many workers, or more shard files")
        return stream.shuffle(seed=self.seed, buffer_size=self.buffer_size)

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        roles = worker.num_workers if worker is not None else 1
        role = ((worker.id if worker is not None else 0) + self.start_batch) % roles
        done_batches = max(0, (self.start_batch - role + roles - 1) // roles)
        to_skip = done_batches * self.batch_size
        stream = self._role_stream(role, roles)
        position = 0  # this role's examples so far, over all passes
        for epoch in itertools.count():
            stream.set_epoch(epoch)
            self.transform.epoch = epoch
            seen = 0
            # .iter() reads the stream as it is, without re-splitting it by worker (a worker plays its own role).
            for row in stream.iter(batch_size=1):
                seen += 1
                position += 1
                if position <= to_skip:
                    continue
                index = ((position - 1) * roles + role) * self.world_size + self.rank  # unique in the run
                out = self.transform({**row, INDEX_COLUMN: [index]})
                yield {name: values[0] for name, values in out.items()}
            if seen == 0:
                raise ValueError("the training stream of this process is empty")
            logger.info("Stream role %d/%d of process %d: pass %d done (%d examples)", role, roles, self.rank,
                        epoch, seen)

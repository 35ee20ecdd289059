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
"""The two asymmetric views of MACRL, built with torchvision transforms v2 and applied through `datasets`.

main view (strong): RandomResizedCrop(scale 0.2-1), flip, colour jitter, grayscale, and blur / solarize when the
images are large enough for them to mean something (>= 64 px); momentum view (weak): a milder crop and a flip.
"""

import io
import logging
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

logger = logging.getLogger(__name__)

# Optional column of sample indices that seeds each sample's augmentation (see ImageTransform).
INDEX_COLUMN = "__sample_index__"
# Below this size blur and solarize destroy most of the signal (CIFAR recipes leave them out).
MIN_SIZE_FOR_BLUR = 64


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F, ...) as 8-bit RGB; transparency is composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        if image.mode == "I" and array.max() <= 255:
            top = 255.0
        image = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _finish(mean: Sequence[float], std: Sequence[float]) -> list:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]


def strong_view(size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, scale=(0.2, 1.0)) -> v2.Compose:
    steps = [
        v2.RandomResizedCrop(size, scale=scale, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ]
    if size >= MIN_SIZE_FOR_BLUR:
        kernel = 2 * (size // 20) + 1
        steps += [v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5), v2.RandomSolarize(128, p=0.2)]
    return v2.Compose(steps + _finish(mean, std))


def weak_view(size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, scale=(0.5, 1.0)) -> v2.Compose:
    steps = [v2.RandomResizedCrop(size, scale=scale, antialias=True), v2.RandomHorizontalFlip()]
    return v2.Compose(steps + _finish(mean, std))


def eval_view(size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD) -> v2.Compose:
    """Deterministic: resize the short side (crop ratio 0.875 from 64 px up, as ImageNet evaluation does), centre crop."""
    resize = size if size < MIN_SIZE_FOR_BLUR else int(round(size / 0.875))
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(size)] + _finish(mean, std))


def decode_image(value) -> Image.Image:
    """A decoded PIL image from what `datasets` holds: a PIL image, or `{"bytes", "path"}` when not decoded."""
    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, dict):
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value.get("path")
        if source is None:
            raise ValueError("no bytes and no path")
        image = Image.open(source)
    else:
        raise TypeError(f"not an image: {type(value).__name__}")
    image.load()  # decode now: a truncated file fails here, not later in a worker's collate
    return image


def image_name(value) -> str:
    if isinstance(value, dict):
        return value.get("path") or "<embedded image bytes>"
    return getattr(value, "filename", None) or "<in-memory image>"


class ImageTransform:
    """Maps a `datasets` batch to named tensors; undecodable images become `None` rows (dropped by the collator).

    `views` maps output names to transforms, e.g. `{"pixel_values": strong, "momentum_pixel_values": weak}`.
    Picklable, so it runs in DataLoader workers. With `seed` set and an `INDEX_COLUMN` in the batch, each sample's
    augmentation is drawn from (seed, epoch, index): reproducible whatever order or process fetches it.
    """

    def __init__(self, image_column: str, views: dict, keep_columns: Sequence[str] = (), seed: int | None = None):
        self.image_column = image_column
        self.views = views
        self.keep_columns = tuple(keep_columns)
        self.seed, self.epoch = seed, 0
        self._warned: set[str] = set()

    def __call__(self, batch: dict) -> dict:
        out = {name: [] for name in self.views}
        out.update({column: batch[column] for column in self.keep_columns})
        out["skipped_image"] = []
        indices = batch.get(INDEX_COLUMN) if self.seed is not None else None
        for row, value in enumerate(batch[self.image_column]):
            if indices is not None:
                torch.manual_seed(hash((self.seed, self.epoch, int(indices[row]))) % (2**63))
            try:
                image = to_rgb(decode_image(value))
            except Exception as err:  # noqa: BLE001 - any decoder error means "skip this file"
                name = image_name(value)
                if name not in self._warned:
                    self._warned.add(name)
                    logger.warning("Skipping undecodable image %s (%s: %s)", name, type(err).__name__, err)
                for view in self.views:
                    out[view].append(None)
                out["skipped_image"].append(name)
                continue
            for view, transform in self.views.items():
                out[view].append(transform(image))
            out["skipped_image"].append(None)
        return out


def pretraining_transform(
    image_column: str, size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, seed: int | None = None
):
    """The MACRL training transform: strong main view and weak momentum view of each image."""
    return ImageTransform(
        image_column,
        {"pixel_values": strong_view(size, mean, std), "momentum_pixel_values": weak_view(size, mean, std)},
        seed=seed,
    )


def collate_images(rows: list[dict]) -> dict:
    """Stack tensor fields, drop rows whose image failed to decode and report their names as `skipped_images`."""
    skipped = [row["skipped_image"] for row in rows if row.get("skipped_image")]
    good = [row for row in rows if not row.get("skipped_image")]
    batch = {}
    if good:
        for key, value in good[0].items():
            if key == "skipped_image":
                continue
            if isinstance(value, torch.Tensor):
                batch[key] = torch.stack([row[key] for row in good])
            elif isinstance(value, (int, np.integer)):
                batch[key] = torch.tensor([row[key] for row in good])
    batch["skipped_images"] = skipped
    return batch

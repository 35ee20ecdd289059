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
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageFilter
from torchvision import tv_tensors
from torchvision.transforms import v2
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

logger = logging.getLogger(__name__)

# Optional column of sample indices that seeds each sample's augmentation (see ImageTransform).
INDEX_COLUMN = "__sample_index__"
# Below this size blur and solarize destroy most of the signal (CIFAR recipes leave them out).
MIN_SIZE_FOR_BLUR = 64
STRONG_MIN_SCALE = 0.2  # the strong view's smallest crop, as a share of the image area


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


class RandomGaussianBlur(v2.Transform):
    """Gaussian blur with a standard deviation drawn from `sigma` per image, as MoCo v2 / BYOL do it: PIL's
    `ImageFilter.GaussianBlur` on PIL images (5x faster than a 23-tap convolution at 224 px), a separable
    convolution on tensors."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0)):
        super().__init__()
        self.sigma = sigma

    def make_params(self, flat_inputs):
        return {"sigma": torch.empty(1).uniform_(*self.sigma).item()}

    def transform(self, inpt, params):
        sigma = params["sigma"]
        if isinstance(inpt, Image.Image):
            return inpt.filter(ImageFilter.GaussianBlur(radius=sigma))
        if isinstance(inpt, torch.Tensor) and inpt.ndim >= 3:
            kernel = 2 * math.ceil(3 * sigma) + 1
            return v2.functional.gaussian_blur(inpt, [kernel, kernel], [sigma, sigma])
        return inpt


class ToNormalizedTensor(v2.Transform):
    """PIL image or uint8 tensor -> float32 `(C, H, W)` tensor normalised by `mean` / `std` (of [0, 1] pixels), in
    one pass over the pixels: ToImage + ToDtype(scale) + Normalize give the same values at twice the cost."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)

    def transform(self, inpt, params):
        if isinstance(inpt, Image.Image):
            array = np.asarray(inpt)
            inpt = torch.from_numpy(array.copy() if not array.flags.writeable else array)
            inpt = inpt.unsqueeze(0) if inpt.ndim == 2 else inpt.permute(2, 0, 1)
        elif not isinstance(inpt, torch.Tensor):
            return inpt
        scale = 255.0 if inpt.dtype == torch.uint8 else 1.0
        return tv_tensors.Image((inpt.float() - self.mean * scale).div_(self.std * scale))


def _finish(mean: Sequence[float], std: Sequence[float]) -> list:
    return [ToNormalizedTensor(mean, std)]


def strong_view(size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, scale=(STRONG_MIN_SCALE, 1.0)) -> v2.Compose:
    steps = [
        v2.RandomResizedCrop(size, scale=scale, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ]
    if size >= MIN_SIZE_FOR_BLUR:
        steps += [v2.RandomApply([RandomGaussianBlur((0.1, 2.0))], p=0.5), v2.RandomSolarize(128, p=0.2)]
    return v2.Compose(steps + _finish(mean, std))


def weak_view(size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, scale=(0.5, 1.0)) -> v2.Compose:
    steps = [v2.RandomResizedCrop(size, scale=scale, antialias=True), v2.RandomHorizontalFlip()]
    return v2.Compose(steps + _finish(mean, std))


def eval_view(size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD) -> v2.Compose:
    """Deterministic: resize the short side (crop ratio 0.875 from 64 px up, as ImageNet evaluation does), centre crop."""
    resize = size if size < MIN_SIZE_FOR_BLUR else int(round(size / 0.875))
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(size)] + _finish(mean, std))


def decode_image(value, min_side: int | None = None) -> Image.Image:
    """A decoded PIL image from what `datasets` holds: a PIL image, or `{"bytes", "path"}` when not decoded.

    With `min_side`, a JPEG whose short side is at least twice that is decoded at a reduced scale (libjpeg's DCT
    scaling, PIL's draft mode: 2-8x less work) that keeps its short side >= `min_side`.
    """
    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, dict):
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value.get("path")
        if source is None:
            raise ValueError("no bytes and no path")
        image = Image.open(source)
        if min_side and image.format == "JPEG" and min(image.size) >= 2 * min_side:
            scale = min_side / min(image.size)
            image.draft("RGB", (math.ceil(image.size[0] * scale), math.ceil(image.size[1] * scale)))
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

    def __init__(self, image_column: str, views: dict, keep_columns: Sequence[str] = (), seed: int | None = None,
                 min_decode_side: int | None = None):
        self.image_column = image_column
        self.views = views
        self.min_decode_side = min_decode_side
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
                image = to_rgb(decode_image(value, self.min_decode_side))
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


STRONG_VIEW_BRANCHES = ("main", "momentum")


def pretraining_transform(
    image_column: str, size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, seed: int | None = None,
    strong_view_branch: str = "main",
):
    """The MACRL training transform: a strong and a weak view of each image.

    `strong_view_branch="main"` (the paper) augments the masked online view strongly and the momentum view weakly;
    `"momentum"` swaps them, as CMAE and ConMIM do, so that masking and colour distortion do not both land on the
    query.
    """
    if strong_view_branch not in STRONG_VIEW_BRANCHES:
        raise ValueError(f"strong_view_branch={strong_view_branch!r}: expected one of {STRONG_VIEW_BRANCHES}")
    strong, weak = strong_view(size, mean, std), weak_view(size, mean, std)
    main, momentum = (strong, weak) if strong_view_branch == "main" else (weak, strong)
    # Decode large JPEGs only as finely as the smallest crop of the strong view (scale 0.2) needs at `size`.
    return ImageTransform(
        image_column, {"pixel_values": main, "momentum_pixel_values": momentum},
        seed=seed, min_decode_side=math.ceil(size / math.sqrt(STRONG_MIN_SCALE)),
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

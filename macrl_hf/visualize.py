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
"""Where the CLS token looks: the last layer's CLS-to-patch attention, overlaid on the image.

    python -m macrl_hf.visualize attention --model_name_or_path DIR --image FILE --output OUT.png

Works for MACRL checkpoints and for any ViT checkpoint (exported ones included). The figure shows the image, the
head-averaged map and one map per head, each upsampled to the image and drawn over it; every panel is
`--panel_size` pixels square, `--columns` to a row.
"""

import argparse
import math
import os

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from .checkpoints import load_encoder  # noqa: E402
from .transforms import to_rgb  # noqa: E402

DPI = 100


@torch.no_grad()
def cls_attention(encoder, pixel_values: torch.Tensor, layer: int = -1) -> torch.Tensor:
    """`(heads, grid, grid)`: how much the CLS token attends to each patch in `layer`, per head (rows sum to 1 with
    the CLS-to-CLS weight left out)."""
    attentions = encoder(pixel_values=pixel_values, output_attentions=True).attentions
    if not attentions:
        raise RuntimeError("the encoder returned no attention weights (load it with attn_implementation='eager')")
    weights = attentions[layer][0, :, 0, 1:]  # (heads, patches): CLS row, patch columns
    grid = int(math.isqrt(weights.shape[-1]))
    return weights.reshape(-1, grid, grid).float()


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """`(n, grid, grid)` -> `(n, height, width)` in [0, 1] each (bilinear, then min-max per map)."""
    up = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    low = up.flatten(1).min(dim=1).values[:, None, None]
    high = up.flatten(1).max(dim=1).values[:, None, None]
    return ((up - low) / (high - low).clamp_min(1e-12)).numpy()


def attention_figure(image: Image.Image, maps: np.ndarray, titles: list[str], panel_size: int = 224,
                     columns: int = 4, alpha: float = 0.6):
    """The image, then each map over it; a `columns`-wide grid of `panel_size`-pixel square panels."""
    panels = 1 + len(maps)
    columns = max(1, min(columns, panels))
    rows = math.ceil(panels / columns)
    fig = plt.figure(figsize=(columns * panel_size / DPI, rows * panel_size / DPI), dpi=DPI)
    shown = np.asarray(image.resize(maps.shape[2:0:-1], Image.BILINEAR))
    for index in range(rows * columns):
        row, column = divmod(index, columns)
        # Axes placed by hand in figure fractions: every panel gets exactly panel_size x panel_size pixels.
        ax = fig.add_axes((column / columns, 1 - (row + 1) / rows, 1 / columns, 1 / rows))
        ax.set_axis_off()
        if index >= panels:
            continue
        ax.imshow(shown)
        if index > 0:
            ax.imshow(maps[index - 1], cmap="jet", alpha=alpha, vmin=0, vmax=1)
        ax.text(0.02, 0.98, "image" if index == 0 else titles[index - 1], transform=ax.transAxes, va="top",
                fontsize=8, color="white", bbox=dict(facecolor="black", alpha=0.5, pad=1, linewidth=0))
    return fig


def save_attention_map(model_name_or_path, image_path, output, layer: int = -1, panel_size: int = 224,
                       columns: int = 4) -> tuple[int, int]:
    """Write the attention figure to `output`; returns its (width, height) in pixels."""
    encoder, processor, _ = load_encoder(model_name_or_path, attn_implementation="eager")
    encoder.eval()
    image = to_rgb(Image.open(image_path))
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
    per_head = cls_attention(encoder, pixel_values, layer)
    maps = upsample(torch.cat([per_head.mean(dim=0, keepdim=True), per_head]), (panel_size, panel_size))
    titles = ["mean of heads"] + [f"head {h}" for h in range(per_head.shape[0])]
    fig = attention_figure(image, maps, titles, panel_size, columns)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    fig.savefig(output, dpi=DPI)
    plt.close(fig)
    with Image.open(output) as written:
        return written.size


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m macrl_hf.visualize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    attention = commands.add_parser("attention", help="the last layer's CLS attention over an image")
    attention.add_argument("--model_name_or_path", required=True, help="a MACRL checkpoint or any ViT checkpoint")
    attention.add_argument("--image", required=True, help="an image file")
    attention.add_argument("--output", required=True, help="the PNG to write")
    attention.add_argument("--layer", type=int, default=-1, help="which layer (default: the last)")
    attention.add_argument("--panel_size", type=int, default=224, help="pixels per (square) panel")
    attention.add_argument("--columns", type=int, default=4, help="panels per row")
    args = parser.parse_args(argv)
    width, height = save_attention_map(args.model_name_or_path, args.image, args.output, args.layer,
                                       args.panel_size, args.columns)
    print(f"Wrote {args.output} ({width}x{height})")


if __name__ == "__main__":
    main()

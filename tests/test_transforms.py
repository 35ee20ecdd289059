import io

import numpy as np
import pytest
import torch
from PIL import Image

from macrl_hf.transforms import collate_images, eval_view, pretraining_transform, strong_view, to_rgb, weak_view


def _image(mode):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (10, 14, 3), dtype=np.uint8))
    if mode == "I;16":
        return Image.fromarray(np.full((10, 14), 65535, dtype=np.uint16))
    if mode == "P-transparent":
        image = rgb.convert("P")
        image.info["transparency"] = 0
        return image
    return rgb.convert(mode)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "P-transparent", "RGBA", "CMYK", "I;16", "I", "F", "1", "RGB"])
def test_any_mode_becomes_rgb_at_model_size(mode):
    transform = pretraining_transform("image", 16)
    out = transform({"image": [_image(mode)]})
    assert out["pixel_values"][0].shape == out["momentum_pixel_values"][0].shape == (3, 16, 16)
    assert out["pixel_values"][0].dtype == torch.float32 and out["skipped_image"] == [None]
    assert to_rgb(_image(mode)).mode == "RGB"


def test_sixteen_bit_is_scaled_not_clipped():
    white = to_rgb(Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)))
    mid = to_rgb(Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)))
    assert np.asarray(white).min() == 255 and 120 <= np.asarray(mid).mean() <= 135


def test_tiny_images_are_upsampled():
    out = pretraining_transform("image", 32)({"image": [Image.new("RGB", (2, 3), (255, 0, 0))]})
    assert out["pixel_values"][0].shape == (3, 32, 32)
    assert eval_view(32)(Image.new("RGB", (2, 3))).shape == (3, 32, 32)


def test_views_differ_and_blur_only_for_large_images():
    image = _image("RGB").resize((64, 64))
    torch.manual_seed(0)
    out = pretraining_transform("image", 32)({"image": [image]})
    assert not torch.equal(out["pixel_values"][0], out["momentum_pixel_values"][0])
    names = lambda t: {type(s).__name__ for s in t.transforms}  # noqa: E731
    assert "GaussianBlur" not in str(strong_view(32)) and "RandomSolarize" not in names(strong_view(32))
    assert "RandomSolarize" in names(strong_view(224)) and "GaussianBlur" in str(strong_view(224))


def test_undecodable_images_are_skipped_and_named(caplog):
    good = io.BytesIO()
    _image("RGB").save(good, format="PNG")
    rows = {"image": [{"bytes": b"", "path": "zero.png"}, {"bytes": b"not an image", "path": "text.png"},
                      {"bytes": good.getvalue()[:40], "path": "truncated.png"}, {"bytes": good.getvalue(), "path": "ok.png"}]}
    out = pretraining_transform("image", 16)(rows)
    assert out["skipped_image"] == ["zero.png", "text.png", "truncated.png", None]
    for name in ("zero.png", "text.png", "truncated.png"):
        assert name in caplog.text
    batch = collate_images([{k: v[i] for k, v in out.items()} for i in range(4)])
    assert batch["pixel_values"].shape == (1, 3, 16, 16)
    assert batch["skipped_images"] == ["zero.png", "text.png", "truncated.png"]


def test_gaussian_blur_is_seeded_and_blurs_pil_images_and_tensors():
    import numpy as np
    import torch
    from PIL import Image

    from macrl_hf.transforms import RandomGaussianBlur

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    blur = RandomGaussianBlur((1.5, 2.0))
    torch.manual_seed(0)
    a = np.asarray(blur(image), dtype=np.float64)
    torch.manual_seed(0)
    b = np.asarray(blur(image), dtype=np.float64)
    assert np.array_equal(a, b) and a.std() < 0.5 * np.asarray(image, dtype=np.float64).std()  # smoother
    tensor = torch.from_numpy(np.asarray(image)).permute(2, 0, 1).float()
    assert blur(tensor).std() < 0.5 * tensor.std()


def test_large_jpegs_are_decoded_at_a_reduced_scale_that_still_covers_the_crops():
    import io

    import numpy as np
    from PIL import Image

    from macrl_hf.transforms import decode_image, pretraining_transform

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((1200, 1600, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    value = {"bytes": buffer.getvalue(), "path": "big.jpg"}
    assert decode_image(value).size == (1600, 1200)
    reduced = decode_image(value, min_side=501)
    assert min(reduced.size) >= 501 and reduced.size == (800, 600)  # DCT scaling by 1/2
    small = io.BytesIO()
    Image.fromarray(np.zeros((375, 500, 3), dtype=np.uint8)).save(small, format="JPEG")
    assert decode_image({"bytes": small.getvalue(), "path": None}, min_side=501).size == (500, 375)  # untouched
    assert pretraining_transform("image", 224).min_decode_side == 501  # 224 / sqrt(0.2): the smallest crop


def test_to_normalized_tensor_equals_torchvisions_three_steps():
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.transforms import v2

    from macrl_hf.transforms import ToNormalizedTensor

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    reference = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=mean, std=std)])
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8))
    ours = ToNormalizedTensor(mean, std)
    assert torch.allclose(ours(image), reference(image), atol=1e-5)
    tensor = v2.ToImage()(image)
    assert torch.allclose(ours(tensor), reference(tensor), atol=1e-5)  # uint8 tensors too


def test_strong_view_branch_chooses_which_view_is_colour_distorted():
    """A flat red image keeps its colour under the weak view (crop, flip) and loses it under the strong one (colour
    jitter with p=0.8, grayscale): the colour tells which branch got which view."""
    red = Image.new("RGB", (32, 32), (200, 20, 20))
    flat_red = weak_view(16)(red)  # crop and flip leave a flat image as it is

    def distorted(transform, key):  # over 20 draws: does the view ever change the colour?
        torch.manual_seed(0)
        return [not torch.allclose(view, flat_red, atol=1e-4) for view in transform({"image": [red] * 20})[key]]

    paper = pretraining_transform("image", 16)
    swapped = pretraining_transform("image", 16, strong_view_branch="momentum")
    assert any(distorted(paper, "pixel_values")) and not any(distorted(paper, "momentum_pixel_values"))
    assert any(distorted(swapped, "momentum_pixel_values")) and not any(distorted(swapped, "pixel_values"))
    with pytest.raises(ValueError, match="strong_view_branch='teacher'"):
        pretraining_transform("image", 16, strong_view_branch="teacher")

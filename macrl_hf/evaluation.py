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
"""Frozen-feature evaluation: feature extraction, weighted kNN (the monitor of solo-learn and DINO), MAE's linear
probe and a few-shot logistic-regression probe (scikit-learn) on a small share of the labels.

    python -m macrl_hf.evaluation knn --model_name_or_path DIR --dataset_name ... (or --train_dir/--validation_dir)
    python -m macrl_hf.evaluation fewshot --model_name_or_path DIR --dataset_name ... --label_fractions 0.01 0.1

`--pooling` picks the read-out: the CLS token, the mean of the patch tokens, or both concatenated (`cls+mean`, the
read-out of DINOv2's linear evaluation); by default the one the checkpoint was pretrained with.
"""

import argparse
import logging
import math

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .checkpoints import load_encoder
from .data import load_image_data
from .labels import resolve_labels
from .transforms import ImageTransform, collate_images, eval_view

READOUTS = ("cls", "mean", "cls+mean")


def pool_features(hidden: torch.Tensor, pooling: str = "cls") -> torch.Tensor:
    """L2-normalised features of a `(batch, 1 + patches, hidden)` last hidden state: the CLS token, the mean of the
    patch tokens, or the two concatenated (`cls+mean`, each normalised, so that each half weighs the same)."""
    if pooling not in READOUTS:
        raise ValueError(f"pooling={pooling!r}: must be one of {READOUTS}")
    if pooling == "cls+mean":
        return concat_readout(pool_features(hidden, "cls"), pool_features(hidden, "mean"))
    pooled = hidden[:, 1:].mean(dim=1) if pooling == "mean" else hidden[:, 0]
    return F.normalize(pooled.float(), dim=1)


def concat_readout(cls_features: torch.Tensor, mean_features: torch.Tensor) -> torch.Tensor:
    """The `cls+mean` read-out from the two normalised read-outs: unit norm again, so that its cosine similarity is
    the mean of theirs."""
    return torch.cat((cls_features, mean_features), dim=1) / math.sqrt(2)


@torch.no_grad()
def extract_features(
    encoder, dataset, image_column: str, label_column: str, image_size: int, mean, std,
    batch_size: int = 256, num_workers: int = 0, pooling: str = "cls",
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised pooled features of the whole, unmasked images, and their labels.

    `encoder` is a `MacrlModel` or a transformers `ViTModel`; `pooling` is one of READOUTS (see pool_features).
    """
    view = ImageTransform(image_column, {"pixel_values": eval_view(image_size, mean, std)}, keep_columns=[label_column])
    loader = DataLoader(dataset.with_transform(view), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_images)
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    features, labels = [], []
    for batch in loader:
        if "pixel_values" not in batch:
            continue
        hidden = encoder(pixel_values=batch["pixel_values"].to(device)).last_hidden_state
        features.append(pool_features(hidden, pooling).cpu())
        labels.append(batch[label_column].cpu())
    encoder.train(was_training)
    return torch.cat(features), torch.cat(labels)


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    k: int = 20, temperature: float = 0.07, num_classes: int | None = None, chunk_size: int = 1024,
) -> torch.Tensor:
    """Class scores `(n_test, num_classes)` from the k most cosine-similar training features, each neighbour voting
    with weight `exp(similarity / temperature)` (Wu et al. 2018, as in DINO and solo-learn)."""
    num_classes = num_classes or int(train_labels.max()) + 1
    k = min(k, train_features.shape[0])
    scores = []
    for start in range(0, test_features.shape[0], chunk_size):
        similarity = test_features[start : start + chunk_size] @ train_features.T
        top_sim, top_idx = similarity.topk(k, dim=1)
        votes = torch.zeros(top_idx.shape[0], num_classes, dtype=top_sim.dtype)
        votes.scatter_add_(1, train_labels[top_idx], (top_sim / temperature).exp())
        scores.append(votes)
    return torch.cat(scores)


def knn_accuracy(train_features, train_labels, test_features, test_labels, k=20, temperature=0.07, num_classes=None):
    scores = knn_predict(train_features, train_labels, test_features, k, temperature, num_classes)
    return (scores.argmax(dim=1) == test_labels).float().mean().item()


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, epochs: int = 100,
                          num_classes: int | None = None, seed: int = 0, lr: float = 1e-2,
                          batch_size: int = 1024) -> float:
    """MAE's linear probe on frozen features: BatchNorm1d(affine=False) + Linear, AdamW, cosine schedule; top-1.
    Seeds torch's global generator with `seed` (as the benchmarks have always done, so their figures reproduce)."""
    num_classes = num_classes or int(train_labels.max()) + 1
    torch.manual_seed(seed)
    head = torch.nn.Sequential(torch.nn.BatchNorm1d(train_features.shape[1], affine=False),
                               torch.nn.Linear(train_features.shape[1], num_classes))
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for _ in range(epochs):
        head.train()
        for idx in torch.randperm(len(train_features)).split(batch_size):
            loss = F.cross_entropy(head(train_features[idx]), train_labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    head.eval()
    with torch.no_grad():
        return (head(test_features).argmax(1) == test_labels).float().mean().item()


def balanced_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of a seeded, class-balanced subset: `fraction` of each class's samples (at least one per class)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for cls in labels.unique():
        members = (labels == cls).nonzero().flatten()
        n = max(1, round(fraction * len(members)))
        chosen.append(members[torch.randperm(len(members), generator=generator)[:n]])
    return torch.cat(chosen).sort().values


def _spelled_out_defaults() -> dict:
    """scikit-learn 1.8+ warns on every LogisticRegressionCV that these defaults will change; spelled out as the values
    it uses today (an L2 penalty; the fitted attributes are not read), so that a probe stays the same and quiet."""
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    if "use_legacy_attributes" not in inspect.signature(LogisticRegressionCV).parameters:
        return {}
    return {"l1_ratios": (0.0,), "use_legacy_attributes": False}


def fewshot_accuracy(train_features, train_labels, test_features, test_labels, fraction: float,
                     draws: int = 5, seed: int = 0, cs=(0.01, 0.1, 1.0, 10.0)) -> list[float]:
    """Top-1 of a logistic-regression probe (scikit-learn) trained on `fraction` of the training labels, one per
    seeded class-balanced draw. The inverse regularisation C is chosen by 3-fold cross-validation on that labelled
    subset only: the probe never sees the other labels nor the test set."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_x, test_x = train_features.float().numpy(), test_features.float().numpy()
    train_y, test_y = train_labels.numpy(), test_labels.numpy()
    accuracies = []
    for draw in range(draws):
        idx = balanced_subset(train_labels, fraction, seed + draw)
        smallest_class = int(torch.bincount(train_labels[idx])[train_labels[idx].unique()].min())
        if smallest_class >= 2:
            probe = LogisticRegressionCV(Cs=list(cs), cv=min(3, smallest_class), max_iter=2000, scoring="accuracy",
                                         **_spelled_out_defaults())
        else:  # one label per class: nothing to cross-validate on
            probe = LogisticRegression(C=1.0, max_iter=2000)
        model = make_pipeline(StandardScaler(), probe)
        idx = idx.numpy()
        model.fit(train_x[idx], train_y[idx])
        accuracies.append(float((model.predict(test_x) == test_y).mean()))
    return accuracies


# ----------------------------------------------------------------------------------------------------------------------
# Command line: `python -m macrl_hf.evaluation knn --model_name_or_path DIR --dataset_name ...`

KNN_KS = (10, 20, 200)


def checkpoint_features(model_name_or_path, train, validation, labels, image_column: str, batch_size: int = 256,
                        num_workers: int = 0, device: str | None = None, pooling: str | None = None):
    """(train features, train labels, validation features, validation labels) of a MACRL or ViT checkpoint, read
    out as `pooling` says or, by default, as the checkpoint was pretrained."""
    encoder, processor, trained_pooling = load_encoder(model_name_or_path)
    pooling = pooling or trained_pooling
    encoder.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    common = dict(image_column=image_column, label_column=labels.column, image_size=encoder.config.image_size,
                  mean=processor.image_mean, std=processor.image_std, batch_size=batch_size, num_workers=num_workers,
                  pooling=pooling)
    return (*extract_features(encoder, labels.encode(train), **common),
            *extract_features(encoder, labels.encode(validation), **common))


def knn_evaluate(model_name_or_path, train, validation, labels, image_column: str, ks=KNN_KS, temperature=0.07,
                 batch_size: int = 256, num_workers: int = 0, device: str | None = None,
                 pooling: str | None = None) -> dict[int, float]:
    """Weighted kNN top-1 accuracy of a MACRL or ViT checkpoint's features, for each k in `ks`."""
    train_x, train_y, test_x, test_y = checkpoint_features(model_name_or_path, train, validation, labels,
                                                           image_column, batch_size, num_workers, device, pooling)
    return {k: knn_accuracy(train_x, train_y, test_x, test_y, k, temperature, num_classes=len(labels.names))
            for k in ks}


def _add_common_arguments(parser) -> None:
    parser.add_argument("--model_name_or_path", required=True, help="a MACRL checkpoint or any ViT checkpoint")
    parser.add_argument("--dataset_name", help="a Hub dataset id or a local dataset directory")
    parser.add_argument("--dataset_config_name")
    parser.add_argument("--train_dir", help="a folder of training images, one sub-folder per class")
    parser.add_argument("--validation_dir", help="a folder of validation images")
    parser.add_argument("--image_column_name")
    parser.add_argument("--label_column_name")
    parser.add_argument("--train_val_split", type=float, default=0.15,
                        help="share of train held out when there is no validation split")
    parser.add_argument("--max_train_samples", type=int, help="use a seeded random subset of N training images")
    parser.add_argument("--max_eval_samples", type=int)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    parser.add_argument("--pooling", choices=READOUTS, help="the read-out: the CLS token, the mean of the patch "
                        "tokens or both concatenated (default: as the checkpoint was pretrained; CLS for a ViT)")
    parser.add_argument("--cache_dir")
    parser.add_argument("--seed", type=int, default=42, help="seed of the train/validation split")


def _label_fraction(value: str) -> float:
    fraction = float(value)
    if not 0.0 < fraction <= 1.0:
        raise argparse.ArgumentTypeError(f"--label_fractions {value}: must be in (0, 1], e.g. 0.01 for 1 %")
    return fraction


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m macrl_hf.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    knn = commands.add_parser("knn", help="weighted kNN top-1 accuracy of frozen features")
    _add_common_arguments(knn)
    knn.add_argument("--k", type=int, nargs="+", default=list(KNN_KS), help="neighbour counts")
    knn.add_argument("--temperature", type=float, default=0.07, help="similarity temperature of the votes")
    fewshot = commands.add_parser("fewshot", help="logistic-regression probe on a small share of the labels")
    _add_common_arguments(fewshot)
    fewshot.add_argument("--label_fractions", type=_label_fraction, nargs="+", default=[0.01, 0.1],
                         help="shares of the training labels, each drawn class-balanced")
    fewshot.add_argument("--draws", type=int, default=5, help="seeded draws of each labelled subset")
    fewshot.add_argument("--draw_seed", type=int, default=0, help="seed of the first draw")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    data = load_image_data(args.dataset_name, args.dataset_config_name, args.train_dir, args.validation_dir,
                           args.image_column_name, args.label_column_name, args.train_val_split,
                           args.max_train_samples, args.max_eval_samples, args.cache_dir, args.seed)
    if data.validation is None:
        raise ValueError(f"{data.name}: no validation split to classify; pass --validation_dir or --train_val_split")
    labels = resolve_labels(data.train, data.validation, data.label_column, data.name, from_folders=bool(
        args.dataset_name is None and (args.train_dir or args.validation_dir)))
    features = checkpoint_features(args.model_name_or_path, data.train, data.validation, labels, data.image_column,
                                   args.batch_size, args.num_workers, args.device, args.pooling)
    header = (f"on {data.name}: {len(data.train)} train / {len(data.validation)} validation images, "
              f"{len(labels.names)} classes")
    if args.command == "knn":
        accuracies = {k: knn_accuracy(*features, k, args.temperature, num_classes=len(labels.names)) for k in args.k}
        print(f"kNN {header}, temperature {args.temperature}")
        for k, accuracy in accuracies.items():
            print(f"k={k:<4d} top-1 {100 * accuracy:6.2f}%")
        return accuracies
    results = {}
    print(f"Few-shot logistic regression {header}, {args.draws} class-balanced draws per share")
    for fraction in args.label_fractions:
        draws = fewshot_accuracy(*features, fraction, args.draws, args.draw_seed)
        mean = sum(draws) / len(draws)
        std = (sum((a - mean) ** 2 for a in draws) / max(len(draws) - 1, 1)) ** 0.5
        results[fraction] = {"mean": mean, "std": std, "draws": draws}
        print(f"{100 * fraction:g} % of labels: top-1 {100 * mean:6.2f}% +- {100 * std:.2f} "
              f"({', '.join(f'{100 * a:.2f}' for a in draws)})")
    return results


if __name__ == "__main__":
    main()

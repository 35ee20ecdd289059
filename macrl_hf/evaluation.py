"""Feature extraction and weighted kNN classification (the monitor of solo-learn and DINO).

    python -m macrl_hf.evaluation knn --model_name_or_path DIR --dataset_name ... (or --train_dir/--validation_dir)
"""

import argparse
import logging

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .checkpoints import load_encoder
from .data import load_image_data
from .labels import resolve_labels
from .transforms import ImageTransform, collate_images, eval_view


@torch.no_grad()
def extract_features(
    encoder, dataset, image_column: str, label_column: str, image_size: int, mean, std,
    batch_size: int = 256, num_workers: int = 0, pooling: str = "cls",
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised pooled features of the whole, unmasked images, and their labels.

    `encoder` is a `MacrlModel` or a transformers `ViTModel`; `pooling` is "cls" or "mean" (of patch tokens).
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
        pooled = hidden[:, 1:].mean(dim=1) if pooling == "mean" else hidden[:, 0]
        features.append(F.normalize(pooled.float(), dim=1).cpu())
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


# ----------------------------------------------------------------------------------------------------------------------
# Command line: `python -m macrl_hf.evaluation knn --model_name_or_path DIR --dataset_name ...`

KNN_KS = (10, 20, 200)


def knn_evaluate(model_name_or_path, train, validation, labels, image_column: str, ks=KNN_KS, temperature=0.07,
                 batch_size: int = 256, num_workers: int = 0, device: str | None = None) -> dict[int, float]:
    """Weighted kNN top-1 accuracy of a MACRL or ViT checkpoint's features, for each k in `ks`."""
    encoder, processor, pooling = load_encoder(model_name_or_path)
    encoder.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    size = encoder.config.image_size
    common = dict(image_column=image_column, label_column=labels.column, image_size=size, mean=processor.image_mean,
                  std=processor.image_std, batch_size=batch_size, num_workers=num_workers, pooling=pooling)
    train_features, train_labels = extract_features(encoder, labels.encode(train), **common)
    test_features, test_labels = extract_features(encoder, labels.encode(validation), **common)
    return {k: knn_accuracy(train_features, train_labels, test_features, test_labels, k, temperature,
                            num_classes=len(labels.names)) for k in ks}


def _add_knn_arguments(parser) -> None:
    parser.add_argument("--model_name_or_path", required=True, help="a MACRL checkpoint or any ViT checkpoint")
    parser.add_argument("--dataset_name", help="a Hub dataset id or a local dataset directory")
    parser.add_argument("--dataset_config_name")
    parser.add_argument("--train_dir", help="a folder of training images, one sub-folder per class")
    parser.add_argument("--validation_dir", help="a folder of validation images")
    parser.add_argument("--image_column_name")
    parser.add_argument("--label_column_name")
    parser.add_argument("--train_val_split", type=float, default=0.15,
                        help="share of train held out when there is no validation split")
    parser.add_argument("--max_train_samples", type=int, help="memory bank size (the first N training images)")
    parser.add_argument("--max_eval_samples", type=int)
    parser.add_argument("--k", type=int, nargs="+", default=list(KNN_KS), help="neighbour counts")
    parser.add_argument("--temperature", type=float, default=0.07, help="similarity temperature of the votes")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    parser.add_argument("--cache_dir")
    parser.add_argument("--seed", type=int, default=42, help="seed of the train/validation split")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m macrl_hf.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_knn_arguments(commands.add_parser("knn", help="weighted kNN top-1 accuracy of frozen features"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    data = load_image_data(args.dataset_name, args.dataset_config_name, args.train_dir, args.validation_dir,
                           args.image_column_name, args.label_column_name, args.train_val_split,
                           args.max_train_samples, args.max_eval_samples, args.cache_dir, args.seed)
    if data.validation is None:
        raise ValueError(f"{data.name}: no validation split to classify; pass --validation_dir or --train_val_split")
    labels = resolve_labels(data.train, data.validation, data.label_column, data.name, from_folders=bool(
        args.dataset_name is None and (args.train_dir or args.validation_dir)))
    accuracies = knn_evaluate(args.model_name_or_path, data.train, data.validation, labels, data.image_column,
                              args.k, args.temperature, args.batch_size, args.num_workers, args.device)
    print(f"kNN on {data.name}: {len(data.train)} train / {len(data.validation)} validation images, "
          f"{len(labels.names)} classes, temperature {args.temperature}")
    for k, accuracy in accuracies.items():
        print(f"k={k:<4d} top-1 {100 * accuracy:6.2f}%")
    return accuracies


if __name__ == "__main__":
    main()

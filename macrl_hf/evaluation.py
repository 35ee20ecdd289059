"""Feature extraction and weighted kNN classification (the monitor of solo-learn and DINO)."""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

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

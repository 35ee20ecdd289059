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
"""Top-5 accuracy as an `evaluate` metric script, shipped with the package so it loads offline."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Top-k accuracy: the share of samples whose true class is among the k highest-scoring classes."

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): per-class scores (logits or probabilities), one row per sample.
    references (`list[int]`): true class ids.
    k (`int`, defaults to 5): how many of the highest scores count as a hit.
Returns:
    top5_accuracy (`float`): in [0, 1] (the key is `top{k}_accuracy` for another `k`).
Examples:
    >>> top5 = evaluate.load("macrl_hf/metrics/top5_accuracy.py")
    >>> top5.compute(predictions=[[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], references=[0])
    {'top5_accuracy': 0.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Top5Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, k: int = 5):
        scores, references = np.asarray(predictions, dtype=np.float32), np.asarray(references)
        if len(references) == 0:
            return {f"top{k}_accuracy": 0.0}
        # A hit when fewer than k classes score strictly higher than the true one (ties count in its favour).
        true_scores = scores[np.arange(len(references)), references]
        rank = (scores > true_scores[:, None]).sum(axis=1)
        return {f"top{k}_accuracy": float((rank < k).mean())}

"""Turn class probabilities into the prediction objects clients receive."""

from collections.abc import Sequence
from typing import Any

from services.artifact.schema import ClassLabel


def prediction_outputs(
    probabilities: Sequence[Sequence[float]], classes: Sequence[ClassLabel]
) -> list[dict[str, Any]]:
    """Per row: the most likely label, its score, and every class's probability."""
    outputs = []
    for row in probabilities:
        best = max(range(len(row)), key=row.__getitem__)
        outputs.append(
            {
                "label": classes[best],
                "score": row[best],
                "probabilities": {str(label): p for label, p in zip(classes, row, strict=True)},
            }
        )
    return outputs

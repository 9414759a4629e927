"""Turn class probabilities into the prediction objects clients receive."""

import math
from collections.abc import Sequence
from typing import Any

from services.artifact.schema import ClassLabel
from services.errors import ValidationFailed


def prediction_outputs(
    probabilities: Sequence[Sequence[float]], classes: Sequence[ClassLabel]
) -> list[dict[str, Any]]:
    """Per row: the most likely label, its score, and every class's probability."""
    outputs = []
    unscorable = [i for i, row in enumerate(probabilities) if not all(map(math.isfinite, row))]
    if unscorable:
        # Possible only for inputs far outside the training range (SERVING_RANGE_POLICY=flag).
        raise ValidationFailed(
            "the model cannot score these rows (non-finite output)",
            details={
                "errors": [
                    {
                        "row": i,
                        "code": "not_scorable",
                        "message": "the model's output is not finite",
                    }
                    for i in unscorable
                ]
            },
        )
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

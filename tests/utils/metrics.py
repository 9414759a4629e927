"""Read Prometheus text exposition, as served at /metrics."""

from prometheus_client.parser import text_string_to_metric_families


def histogram_totals(text: str, name: str, **labels: str) -> tuple[float, float]:
    """Sum and count of histogram `name`, added up over every series carrying `labels`."""
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if any(sample.labels.get(key) != value for key, value in labels.items()):
                continue
            if sample.name == f"{name}_sum":
                total += sample.value
            elif sample.name == f"{name}_count":
                count += sample.value
    return total, count

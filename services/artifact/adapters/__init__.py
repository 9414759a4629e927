"""One small adapter per framework; `get_adapter` picks one by the framework's name."""

from services.artifact.adapters.base import FRAMEWORKS, FrameworkAdapter, Predictor, get_adapter

__all__ = ["FRAMEWORKS", "FrameworkAdapter", "Predictor", "get_adapter"]

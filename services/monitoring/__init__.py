"""Drift and live quality of served models: pure computations over logged inputs and labels."""

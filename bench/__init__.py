"""Load benchmarks that print numbers; never pass/fail tests."""

"""Errors the CLI reports as one clear line and a non-zero exit, never as a traceback."""


class ExportError(Exception):
    """Something about the inputs prevents an export; nothing was written to the store."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return "\n".join([self.message, *(f"  - {problem}" for problem in self.problems)])


class DataValidationError(ExportError):
    """A data set does not fit the feature schema: wrong columns, types or missing values."""

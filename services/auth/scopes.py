"""The scopes a credential can carry; `admin` implies every other."""

PREDICTIONS_WRITE = "predictions:write"
PREDICTIONS_READ = "predictions:read"
MODELS_READ = "models:read"
ADMIN = "admin"
ALL_SCOPES = (PREDICTIONS_WRITE, PREDICTIONS_READ, MODELS_READ, ADMIN)


def grants(held: frozenset[str], needed: str) -> bool:
    return needed in held or ADMIN in held

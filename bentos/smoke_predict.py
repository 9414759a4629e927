"""Predict each model's golden examples through a running gateway and compare them exactly.

    python bentos/smoke_predict.py --url http://127.0.0.1:38080 --bento TAG [--user U]

The models and their golden examples come from the bento's pinned models in $BENTOML_HOME.
With --user (the password in $SMOKE_ADMIN_PASSWORD), it first gets a token with the OAuth2
password grant at /api/v1/auth/token and checks that a request without it gets 401.
Exit status 0 only when every model answered 201 with exactly its recorded outputs.
"""

import argparse
import os
import sys
from typing import Any

import httpx

ROWS = 4


def token(client: httpx.Client, user: str, password: str) -> str:
    """A bearer token from the OAuth2 password grant (form-encoded, RFC 6749)."""
    response = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user, "password": password},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def golden(tag: str) -> tuple[list[dict[str, Any]], list[list[float]]]:
    """The first golden inputs of a stored model and their recorded outputs."""
    import bentoml

    metadata: dict[str, Any] = dict(bentoml.models.get(tag).info.metadata)
    examples = metadata["golden_examples"]
    return examples["inputs"][:ROWS], examples["outputs"][:ROWS]


def probabilities(body: dict[str, Any]) -> list[list[float]]:
    """Class probabilities per row, in the model's class order, from a 201 body."""
    return [list(p["outputs"]["probabilities"].values()) for p in body["data"]["predictions"]]


def check_model(client: httpx.Client, tag: str, headers: dict[str, str]) -> bool:
    inputs, expected = golden(tag)
    response = client.post(
        "/api/v1/predictions", json={"model": tag, "inputs": inputs}, headers=headers
    )
    if response.status_code != 201:
        print(f"FAIL {tag}: HTTP {response.status_code} {response.text[:300]}")
        return False
    actual = probabilities(response.json())
    if actual != expected:
        print(f"FAIL {tag}: outputs differ from the golden record\n  {actual}\n  {expected}")
        return False
    print(f"ok   {tag}: 201, {len(inputs)} golden rows reproduced exactly")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bento", required=True, help="the bento tag whose models to check")
    parser.add_argument("--user", help="authenticate as this user ($SMOKE_ADMIN_PASSWORD)")
    args = parser.parse_args(argv)
    import bentoml

    tags = [str(model.tag) for model in bentoml.bentos.get(args.bento).info.all_models]
    headers: dict[str, str] = {}
    with httpx.Client(base_url=args.url, timeout=60) as client:
        if args.user:
            unauthenticated = client.post(
                "/api/v1/predictions", json={"model": tags[0], "inputs": golden(tags[0])[0]}
            )
            if unauthenticated.status_code != 401:
                print(f"FAIL: a request without a token got {unauthenticated.status_code}")
                return 1
            print("ok   no token: 401")
            password = os.environ["SMOKE_ADMIN_PASSWORD"]
            headers["Authorization"] = f"Bearer {token(client, args.user, password)}"
            print(f"ok   token for {args.user}")
        results = [check_model(client, tag, headers) for tag in tags]
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Build the CPU or GPU bento and check what it pins: `python bentos/build.py cpu|gpu`.

The service reads SERVING_* at import, and `bentoml build` imports it: that is when each
service's models (the gateway's in-process ones, each runner's) are resolved to exact versions and
the PyTorch runner's resources are recorded. So the build runs with the SERVING_* values of the
bentofile's own `envs` (the ones the image will run with), then checks the built bento: every
model pinned by version, the PyTorch runner asking for a GPU exactly in the GPU bento. It prints
the bento tag as its last line.

    python bentos/build.py cpu                            # bentofile.yaml
    python bentos/build.py gpu                            # bentos/bentofile.gpu.yaml
    python bentos/build.py cpu --context DIR              # also write the image build context
    SERVING_MODELS=fraud-xgb:v1,... python bentos/build.py cpu   # pin other versions

`--context DIR` writes what `bentoml containerize` builds from (the bento, its models and the
Containerfile at env/docker/Dockerfile), for `buildah bud` (bentos/smoke_container.sh).
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BENTOFILES = {"cpu": ROOT / "bentofile.yaml", "gpu": ROOT / "bentos" / "bentofile.gpu.yaml"}


class BentoCheckFailed(Exception):
    """The built bento does not pin or request what it should."""


def bentofile_envs(variant: str) -> dict[str, str]:
    """The `envs` of a variant's bentofile, name -> value."""
    config = yaml.safe_load(BENTOFILES[variant].read_text())
    return {env["name"]: str(env.get("value", "")) for env in config.get("envs", [])}


def check(info: Any, variant: str) -> list[str]:
    """What the bento pins, one line per model; BentoCheckFailed when something is off."""
    lines = []
    # Runner services load their framework's models; the gateway those it predicts in-process.
    if not any(service.models for service in info.services):
        raise BentoCheckFailed("no service in the bento declares a model")
    for service in info.services:
        if service.name.endswith("_runner") and not service.models:
            raise BentoCheckFailed(f"{service.name} declares no models")
        for model in service.models:
            if not model.tag.version or model.tag.version == "latest":
                raise BentoCheckFailed(f"{service.name}: {model.tag} is not pinned by version")
            lines.append(f"{service.name}: {model.tag}")
        gpus = (service.config.get("resources") or {}).get("gpu", 0)
        wanted = 1 if variant == "gpu" and service.name == "torch_runner" else 0
        if gpus != wanted:
            raise BentoCheckFailed(f"{service.name} asks for {gpus} GPUs, expected {wanted}")
    return lines


def write_context(tag: str, directory: Path) -> None:
    """The image build context of `tag`, as `bentoml containerize` assembles it."""
    import bentoml
    from bentoml._internal.container import construct_containerfile

    bento = bentoml.bentos.get(tag)
    with construct_containerfile(bento, enable_buildkit=False, add_header=True) as (ctx, _):
        shutil.copytree(ctx, directory, dirs_exist_ok=True)


def build(variant: str, version: str | None = None) -> str:
    """Build the variant from the repository root; return its tag."""
    import bentoml

    bento = bentoml.bentos.build_bentofile(
        str(BENTOFILES[variant]), build_ctx=str(ROOT), version=version
    )
    try:
        lines = check(bento.info, variant)
    except BentoCheckFailed:
        bentoml.bentos.delete(str(bento.tag))
        raise
    for line in lines:
        print(line)
    return str(bento.tag)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("variant", choices=sorted(BENTOFILES))
    parser.add_argument("--version", help="bento version (default: generated)")
    parser.add_argument("--context", type=Path, help="also write the image build context here")
    parser.add_argument(
        "--skip-requirements-check",
        action="store_true",
        help="do not check that bentos/requirements-*.txt are current",
    )
    args = parser.parse_args(argv)
    if not args.skip_requirements_check:
        generator = ROOT / "bentos" / "gen_requirements.py"
        if subprocess.run([sys.executable, str(generator), "--check"]).returncode != 0:
            return 1
    # Before bentoml imports the service: build with the values the image runs with.
    os.environ.update(
        {k: v for k, v in bentofile_envs(args.variant).items() if k.startswith("SERVING_")}
    )
    try:
        tag = build(args.variant, args.version)
    except BentoCheckFailed as exc:
        print(f"bento check failed: {exc}", file=sys.stderr)
        return 1
    if args.context is not None:
        write_context(tag, args.context)
        print(f"build context: {args.context}")
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())

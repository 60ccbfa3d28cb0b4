"""``llmstep image build``: a step image from a base step image plus the user's own dependencies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_image_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from llmstep.compiler.walk import DEFAULT_IMAGE
    from llmstep.local.images import ENGINES

    group = sub.add_parser(
        "image",
        parents=[common],
        help="build a step image with your own dependencies",
        description="Step images: `llmstep image build` adds your requirements to a step image.",
    )
    commands = group.add_subparsers(dest="image_command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "build",
        parents=[common],
        help="build a step image from a step image plus your requirements",
        description="Build a step image: FROM a step image (default: the one compile uses), pip install your "
        "requirements file or project into its virtualenv (offline with --wheels), record its modules (so compile "
        "warns about a step that imports one it lacks), tag it, optionally push it, and print the image= to use. "
        "Exit 2 for a bad option or a missing file or engine, 1 when the engine fails (its output says why).",
    )
    inputs = p.add_mutually_exclusive_group(required=True)
    inputs.add_argument("-r", "--requirements", type=Path, metavar="FILE", help="a requirements.txt to pip install")
    inputs.add_argument(
        "--project", type=Path, metavar="DIR", help="a project directory with a pyproject.toml to pip install"
    )
    p.add_argument(
        "--from",
        dest="base",
        default=DEFAULT_IMAGE,
        metavar="IMAGE",
        help=f"the step image to start from (default: {DEFAULT_IMAGE})",
    )
    p.add_argument(
        "--wheels",
        type=Path,
        metavar="DIR",
        help="install only from the wheels in DIR (pip --no-index): no package index is reached",
    )
    p.add_argument("--tag", help="the new image's name (default: localhost/llmstep-deps:<digest of the inputs>)")
    p.add_argument("--push", action="store_true", help="push the image after building it")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        help="the container engine (default: the first installed of " + ", ".join(ENGINES) + ")",
    )
    p.add_argument("--dry-run", action="store_true", help="print the Containerfile and build nothing")
    p.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from llmstep.local import images

    spec = images.BuildSpec(args.base, args.requirements, args.project, args.wheels).check()
    tag = args.tag or spec.default_tag()
    if not tag.strip() or any(c.isspace() for c in tag):
        from llmstep.errors import UsageError

        raise UsageError(f"--tag {tag!r} is not an image reference")
    if args.dry_run:
        sys.stdout.write(images.containerfile(spec))
        return 0
    engine = images.find_engine(args.engine)
    modules = images.build(spec, tag, engine, push=args.push, say=lambda m: print(f"llmstep: {m}", file=sys.stderr))
    print(f"llmstep: built {tag} ({len(modules)} modules recorded in its label)", file=sys.stderr)
    print(tag)
    print(f'use it: llmstep.compile(chain, image="{tag}")  or  llmstep compile|run ... --image {tag}', file=sys.stderr)
    return 0

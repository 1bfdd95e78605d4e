"""The Airbyte image, built from the Dockerfile and run with podman, where no Docker engine runs.

    image = connector_image()                       # builds, or finds the build of these inputs
    completed = run_in_image(image, ["spec"])       # `docker run --rm IMAGE spec`, as Airbyte runs it
    python -m integration_tests.image build         # the same from a shell; prints the image tag

Airbyte builds the image with `docker build` (or `airbyte-cdk image build`) on the base image
pinned in metadata.yaml. Our machines have no Docker engine and cannot pull that base, so here:

- The base is a stand-in with what the connector relies on in Airbyte's `python-connector-base`
  4.x: Debian 13 with its Python 3.13, `python` on PATH, a user `airbyte` and `/airbyte`. It is
  made once per machine with `debootstrap` (from the Debian mirror apt uses) and imported.
- The Dockerfile is built unchanged, with the stand-in as its `BASE_IMAGE` build argument.
- podman runs with runc, cgroupfs and no default rlimits (the settings these machines need),
  the overlay storage driver where the kernel mounts it in the cache folder (else vfs), and
  containers use the host network, so the connector reaches an emulator on the host's 127.0.0.1. The settings live in `containers.conf` and `storage.conf`
  under the cache folder; `docker_cli_shim` gives the CDK's image tests a `docker` that is podman
  with them.

Cache (`SOURCE_ITERABLE_PODMAN_CACHE`, default `~/.cache/source-iterable/podman`): podman's
storage, with the stand-in base and the image layers. An image is tagged with a hash of
everything its build reads (Dockerfile, the build context that .dockerignore sends, the base
image), so unchanged inputs are not built again; anything missing is made again, so an empty
cache only costs time. It needs root, podman, runc and debootstrap: `apt-get install podman runc
debootstrap` (`.ci/run` installs them).
"""

import argparse
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "localhost/source-iterable"
# What the connector needs from Airbyte's python-connector-base 4.x, and how the stand-in gets it.
STANDIN_SUITE = "trixie"  # Debian 13, whose python3 is 3.13, as in the base image
STANDIN_PACKAGES = ["python3", "python3-venv", "ca-certificates"]
STANDIN_SETUP = [
    "ln -s /usr/bin/python3 /usr/local/bin/python",
    "useradd --uid 1000 --create-home --shell /bin/bash airbyte",
    "mkdir -p /airbyte && chown airbyte:airbyte /airbyte",
    "rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*",
]
STANDIN_CONFIG = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8"]
STANDIN_REPOSITORY = "localhost/source-iterable-standin-base"
BUILDER_REPOSITORY = "localhost/source-iterable-builder"
BUILDER_STAGE = "builder"  # the Dockerfile's first stage
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Builds kept, the newest included: test runs of other work trees on this machine may use them.
KEEP_IMAGES = 3
PODMAN_SETUP_HINT = "install them with `apt-get install -y podman runc debootstrap` (as root)"
PODMAN_MISSING = "podman is not installed: `apt-get install -y podman runc debootstrap` as root (.ci/run does)"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "source-iterable" / "podman"
    return Path(os.environ.get("SOURCE_ITERABLE_PODMAN_CACHE") or default)


def podman_installed() -> bool:
    return shutil.which("podman") is not None


def podman_environment() -> Dict[str, str]:
    """This process's environment with podman's settings for these machines."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    containers_conf, storage_conf = folder / "containers.conf", folder / "storage.conf"
    # runc and crun refuse podman's default rlimits here, and the hybrid cgroups need cgroupfs.
    _write_if_changed(
        containers_conf,
        '[containers]\ndefault_ulimits = []\nnetns = "host"\n\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n',
    )
    driver = storage_driver()
    # One storage folder per driver: podman refuses storage that another driver made.
    _write_if_changed(
        storage_conf,
        f'[storage]\ndriver = "{driver}"\ngraphroot = "{folder / f"storage-{driver}"}"\nrunroot = "{folder / f"run-{driver}"}"\n',
    )
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf), "CONTAINERS_STORAGE_CONF": str(storage_conf)}


@functools.lru_cache(maxsize=1)
def storage_driver() -> str:
    """`overlay` where the kernel mounts it in the cache folder, else `vfs` (which copies every
    layer whole: a cold build takes about 3 minutes instead of 1½ on 2 cores)."""
    if os.environ.get("SOURCE_ITERABLE_PODMAN_STORAGE_DRIVER"):
        return os.environ["SOURCE_ITERABLE_PODMAN_STORAGE_DRIVER"]
    with tempfile.TemporaryDirectory(prefix="overlay-probe-", dir=cache_dir()) as folder:
        lower, upper, work, merged = (Path(folder) / name for name in ("lower", "upper", "work", "merged"))
        for directory in (lower, upper, work, merged):
            directory.mkdir()
        options = f"lowerdir={lower},upperdir={upper},workdir={work}"
        probe = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], capture_output=True, timeout=30)
        if probe.returncode != 0:
            return "vfs"
        subprocess.run(["umount", str(merged)], capture_output=True, timeout=30, check=True)
    return "overlay"


def podman(*arguments: str, timeout: float = 600, check: bool = True, **run: object) -> subprocess.CompletedProcess:
    """Runs `podman ARGUMENTS` with the settings of `podman_environment`; output is captured."""
    _require_tools("podman", "runc")
    completed = subprocess.run(
        ["podman", *arguments], env=podman_environment(), capture_output=True, text=True, timeout=timeout, **run
    )
    if check and completed.returncode != 0:
        raise RuntimeError(f"podman {' '.join(arguments[:3])} ... failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return completed


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def standin_base() -> str:
    """The stand-in base image's tag; made (about a minute) when this machine does not have it."""
    recipe = json.dumps([STANDIN_SUITE, STANDIN_PACKAGES, STANDIN_SETUP, STANDIN_CONFIG]).encode()
    tag = f"{STANDIN_REPOSITORY}:3.13-{hashlib.sha256(recipe).hexdigest()[:12]}"
    with _build_lock():
        if not image_exists(tag):
            _make_standin_base(tag)
    return tag


def connector_image(rebuild: bool = False) -> str:
    """The tag of the image built from the Dockerfile on the stand-in base, built if needed.

    The tag is a hash of what the build reads, so an existing tag is the build of these inputs.
    """
    base = standin_base()
    base_id = podman("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    tag = f"{REPOSITORY}:{_build_inputs_hash(base_id)}"
    with _build_lock():
        if rebuild or not image_exists(tag):
            started = time.monotonic()
            # The builder stage is tagged too, so that pruning keeps its layers as the cache of
            # the next build: a change to the connector's code then skips the dependencies' install.
            _build(base, target=BUILDER_STAGE, tag=tag.replace(REPOSITORY, BUILDER_REPOSITORY))
            _build(base, target=None, tag=tag)
            _log(f"built {tag} in {time.monotonic() - started:.0f} s")
            _remove_older_images(keep=tag)
    return tag


def _build(base: str, target: Optional[str], tag: str) -> None:
    podman(
        "build", "--isolation=chroot", "--network=host", "--layers",
        # The host's CA bundle, for pip's downloads in this network (as the host's pip uses it).
        "--volume", "/etc/ssl/certs:/etc/ssl/certs:ro",
        "--build-arg", f"BASE_IMAGE={base}", *(["--target", target] if target else []), "--tag", tag, str(ROOT),
        timeout=1800,
    )  # fmt: skip


def run_in_image(
    image: str,
    arguments: Sequence[str],
    read_only_files: Optional[Mapping[str, Path]] = None,
    entrypoint: Optional[str] = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """`podman run --rm IMAGE ARGUMENTS`, with each host file of `read_only_files` mounted
    read-only at its container path, as Airbyte mounts config and catalog. Not checked."""
    mounts = [f"--volume={host_path}:{container_path}:ro" for container_path, host_path in (read_only_files or {}).items()]
    overrides = [f"--entrypoint={entrypoint}"] if entrypoint else []
    return podman("run", "--rm", *mounts, *overrides, image, *arguments, timeout=timeout, check=False)


@contextmanager
def docker_cli_shim() -> Iterator[Path]:
    """A folder holding a `docker` command that is podman with these settings, for tools that
    call `docker run` themselves (the CDK's image tests); put it first on PATH."""
    environment = podman_environment()
    with tempfile.TemporaryDirectory(prefix="source-iterable-docker-shim-") as folder:
        docker = Path(folder) / "docker"
        docker.write_text(
            "#!/bin/sh\n"
            f"export CONTAINERS_CONF='{environment['CONTAINERS_CONF']}'\n"
            f"export CONTAINERS_STORAGE_CONF='{environment['CONTAINERS_STORAGE_CONF']}'\n"
            'exec podman "$@"\n'
        )
        docker.chmod(0o755)
        yield Path(folder)


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (the network may reach no other)."""
    if os.environ.get("SOURCE_ITERABLE_DEBIAN_MIRROR"):
        return os.environ["SOURCE_ITERABLE_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        if source.is_file():
            for line in source.read_text().splitlines():
                if not line.lstrip().startswith("#"):
                    for url in re.findall(r"(https?://\S+?/debian)/?(?:\s|$)", line):
                        return url
    return DEFAULT_DEBIAN_MIRROR


def _make_standin_base(tag: str) -> None:
    _require_tools("debootstrap")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="standin-", dir=cache_dir()) as folder:
        rootfs = Path(folder) / "rootfs"
        command = [
            "debootstrap", "--variant=minbase", f"--include={','.join(STANDIN_PACKAGES)}",
            STANDIN_SUITE, str(rootfs), debian_mirror(),
        ]  # fmt: skip
        _checked(command, timeout=1200)
        _checked(["chroot", str(rootfs), "sh", "-c", " && ".join(STANDIN_SETUP)], timeout=120)
        archive = Path(folder) / "rootfs.tar"
        _checked(["tar", "-C", str(rootfs), "-cf", str(archive), "."], timeout=300)
        changes = [argument for change in STANDIN_CONFIG for argument in ("--change", change)]
        podman("import", *changes, str(archive), tag, timeout=600)
    _log(f"made the stand-in base {tag} in {time.monotonic() - started:.0f} s")


def _build_inputs_hash(base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    for path in [ROOT / "Dockerfile", ROOT / ".dockerignore", *_build_context_files()]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _build_context_files() -> List[Path]:
    """The files .dockerignore sends: everything excluded (`*`), but its `!` lines and no caches."""
    sent = [line[1:].strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    files: List[Path] = []
    for entry in sent:
        path = ROOT / entry
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files.extend(p for p in candidates if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return files


def _remove_older_images(keep: str) -> None:
    """Keeps the `KEEP_IMAGES` newest builds (image and builder stage): vfs stores every layer whole."""
    for repository in (REPOSITORY, BUILDER_REPOSITORY):
        listed = podman("images", "--format", "{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}", "--filter", f"reference={repository}")
        newest_first = [line.split("\t")[1] for line in sorted(listed.stdout.splitlines(), reverse=True)]
        for old in [tag for tag in newest_first if tag.split(":")[1] != keep.split(":")[1]][KEEP_IMAGES - 1 :]:
            podman("rmi", old, check=False)  # one in use by a container stays
    podman("image", "prune", "--force", check=False)


@contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time on this machine (pytest-xdist workers, other work trees)."""
    lock_path = cache_dir() / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: {PODMAN_SETUP_HINT}")


def _checked(command: List[str], timeout: float) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({completed.returncode}):\n{(completed.stdout + completed.stderr)[-3000:]}")


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        # Replaced whole: another process's podman may be reading it.
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        staged.write_text(text)
        staged.replace(path)


def _log(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m integration_tests.image", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "base"], help="build: the connector image; base: the stand-in base only")
    parser.add_argument("--rebuild", action="store_true", help="build even if these inputs were built before")
    arguments = parser.parse_args(argv)
    print(standin_base() if arguments.command == "base" else connector_image(rebuild=arguments.rebuild))


if __name__ == "__main__":
    main()

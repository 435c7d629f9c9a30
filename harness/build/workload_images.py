"""Workload images made here, without any registry: `nginx:stable` and
`busybox:stable` (also tagged `busybox:latest`, the image local-path-
provisioner's helper pod runs) as OCI image archives built from Debian 12
packages, reproducibly, with no daemon and no network but Debian's package
registry. Suites preload them with `ctr -n k8s.io images import <archive>`.

Each archive is cached under the hash of its inputs (recipe, package
versions, this code, SOURCE_DATE_EPOCH) and built once under a file lock,
into a temporary directory renamed into place: a killed build leaves no
half entry."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from filelock import FileLock

from harness import elf
from harness.artefact import cache_root, sha256_file
from harness.build import debian, oci, sharedlibs
from harness.build.builder import out_of_space_is_one_line, remove_leftovers
from harness.build.rootfs import glob_regex
from harness.build.workload_recipes import RECIPES, Recipe
from harness.errors import UserError
from harness.log import logger
from harness.tools import run_tool

HARNESS = Path(__file__).resolve().parent.parent
# Every image: the mount points a runtime fills, and the usual writable places.
BASE_DIRS = (
    ("dev", 0o755, 0),
    ("proc", 0o755, 0),
    ("sys", 0o755, 0),
    ("etc", 0o755, 0),
    ("root", 0o700, 0),
    ("run", 0o755, 0),
    ("tmp", 0o1777, 0),
    ("var/tmp", 0o1777, 0),
)
# The modules whose code shapes an archive (its cache key hashes them).
CODE = (
    "build/workload_images.py",
    "build/workload_recipes.py",
    "build/oci.py",
    "build/sharedlibs.py",
    "build/debian.py",
    "build/builder.py",  # out_of_space_is_one_line, remove_leftovers
    "build/rootfs.py",  # glob_regex
    "elf.py",
    "tools.py",
)
# The modules that choose an image's packages (their memo hashes them).
PLAN_CODE = (
    "build/workload_images.py",
    "build/workload_recipes.py",
    "build/sharedlibs.py",
    "build/debian.py",
    "elf.py",
)

log = logger("build.images")


# ---- pure parts -----------------------------------------------------------


def source_date_epoch() -> int:
    """File times and `created` of the images: SOURCE_DATE_EPOCH, else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not value.isdigit():
        raise UserError(f"SOURCE_DATE_EPOCH must be a number of seconds, not {value!r}")
    return int(value)


def code_digest() -> dict[str, str]:
    """The code that makes the archives: the modules this one runs (the OS
    image's other modules change often and make no archive)."""
    return {name: sha256_file(HARNESS / name) for name in CODE}


def digest_of(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:24]


def take(root: Path, globs: tuple[str, ...]) -> list[str]:
    """Files and links of an unpacked package that match the globs, sorted."""
    regexes = [glob_regex(g) for g in globs]
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (path.is_symlink() or not path.is_dir()) and any(r.match(rel) for r in regexes):
            found.append(rel)
    missing = [g for g, r in zip(globs, regexes, strict=True) if not any(map(r.match, found))]
    if missing:
        raise UserError(f"{root.name} has no file matching {', '.join(missing)}")
    return found


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return elf.is_elf64_le(f.read(6))


# ---- which packages -------------------------------------------------------


def _root_specs(recipe: Recipe) -> list[debian.PackageSpec]:
    return [debian.PackageSpec(name=n, into="image", take=g) for n, g in recipe.packages]


def _programs(roots: dict[str, Path], recipe: Recipe) -> list[str]:
    """The ELF files an image takes from its packages."""
    return [
        rel
        for name, globs in recipe.packages
        for rel in take(roots[name], globs)
        if not (roots[name] / rel).is_symlink() and is_elf(roots[name] / rel)
    ]


def plan(recipe: Recipe) -> list[debian.ResolvedPackage]:
    """The recipe's packages and those its programs' libraries come from.
    Which files: the loader and DT_NEEDED closure (harness.build.sharedlibs).
    Where to look: the Depends of the packages already used, a level at a
    time, until every soname is found."""
    cache = cache_root()
    chosen = {p.package: p for p in debian.resolve(_root_specs(recipe))}
    roots = list(chosen)
    while True:
        tree = sharedlibs.UnionTree({n: debian.unpacked(p, cache) for n, p in chosen.items()})
        result = sharedlibs.closure(tree, _programs(tree.roots, recipe))
        owners = sorted({tree.owner(p) or "" for p in result.paths} - set(roots))
        if not result.missing:
            return [chosen[n] for n in (*roots, *owners)]
        users = sorted({tree.owner(p) or "" for p in result.paths})
        more = sorted({d for ds in debian.dependencies(users).values() for d in ds} - set(chosen))
        if not more:
            soname, needer = result.missing[0]
            raise UserError(
                f"{recipe.name} image: {soname} (needed by /{needer}) is in none of the "
                f"Debian packages {', '.join(sorted(chosen))}"
            )
        for pkg in debian.resolve([debian.PackageSpec(d, "library", ()) for d in more]):
            chosen[pkg.package] = pkg


def plan_memoized(recipe: Recipe) -> list[debian.ResolvedPackage]:
    """`plan`, remembered while apt's package lists and the code that plans
    stay the same: a cache hit must not run apt-cache (seconds on a busy host)."""
    memo = cache_root() / "workload-images" / f"{recipe.name}-packages.json"
    code = {name: sha256_file(HARNESS / name) for name in PLAN_CODE}
    key = digest_of([recipe.packages, debian.apt_state(), code])
    specs = {spec.name: spec for spec in _root_specs(recipe)}
    pairs = debian.remembered_pairs(memo, key, lambda: plan(recipe))
    return [
        debian.ResolvedPackage(specs.get(name) or debian.PackageSpec(name, "library", ()), name, v)
        for name, v in pairs
    ]


# ---- the build ------------------------------------------------------------


def build_archive(recipe: Recipe) -> Path:
    """The cached OCI archive of a recipe, built if needed."""
    started = time.monotonic()
    packages = plan_memoized(recipe)
    epoch = source_date_epoch()
    key = digest_of(
        {
            "recipe": recipe.as_input(),
            "packages": [[p.package, p.version] for p in packages],
            "code": code_digest(),
            "epoch": epoch,
        }
    )
    store = cache_root() / "workload-images"
    store.mkdir(parents=True, exist_ok=True)
    target = store / f"{recipe.name}-{key}"
    archive = target / f"{recipe.name}.tar"
    with FileLock(str(target) + ".lock"):
        if (target / "manifest.json").is_file():
            log.info(f"[images] cache hit: {archive} ({time.monotonic() - started:.2f}s)")
            return archive
        remove_leftovers(target)
        with out_of_space_is_one_line(store):
            _build_into(target, recipe, packages, epoch)
    log.info(f"[images] built {archive} ({time.monotonic() - started:.1f}s)")
    return archive


def _build_into(
    target: Path, recipe: Recipe, packages: list[debian.ResolvedPackage], epoch: int
) -> None:
    """The archive and its manifest (what it holds and is made of), written in
    a work directory renamed into place when complete."""
    work = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        archive = work / f"{recipe.name}.tar"
        archive.write_bytes(oci.archive(assemble(recipe, packages, epoch)))
        manifest = {
            "name": recipe.name,
            "refs": recipe.refs,
            "archive": archive.name,
            "sha256": sha256_file(archive),
            "packages": [
                {
                    "package": p.package,
                    "version": p.version,
                    "sha256": sha256_file(debian.download(p, cache_root() / "debs")),
                }
                for p in packages
            ],
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def assemble(recipe: Recipe, packages: list[debian.ResolvedPackage], epoch: int) -> oci.Image:
    """The image of a recipe from its (planned) packages."""
    cache = cache_root()
    tree = sharedlibs.UnionTree({p.package: debian.unpacked(p, cache) for p in packages})
    layer = oci.Layer()
    for path, mode, uid in (*BASE_DIRS, *recipe.dirs):
        layer.dir(path, mode, uid, uid)
    for name, globs in recipe.packages:
        for rel in take(tree.roots[name], globs):
            _add(layer, rel, tree.roots[name] / rel)
    result = sharedlibs.closure(tree, _programs(tree.roots, recipe))
    if result.missing:
        soname, needer = result.missing[0]
        raise UserError(f"{recipe.name} image: no {soname} for /{needer} in its packages")
    for rel in result.paths:
        _add(layer, rel, tree.host_path(rel))
    for pkg in packages:  # each package's licence travels with its files
        doc = tree.roots[pkg.package] / "usr/share/doc" / pkg.package
        if not doc.is_symlink() and (doc / "copyright").is_file():
            _add(layer, f"usr/share/doc/{pkg.package}/copyright", doc / "copyright")
    if recipe.applets_of:
        _add_applets(layer, recipe.applets_of, tree.host_path(recipe.applets_of))
    for path, text in recipe.files:
        layer.file(path, text.encode())
    versions = " ".join(f"{p.package}={p.version}" for p in packages)
    return oci.Image(
        layer=layer,
        config=recipe.config,
        refs=recipe.refs,
        created_by=f"kubesolo-harness images: Debian 12 packages {versions}",
        mtime=epoch,
    )


def _add(layer: oci.Layer, rel: str, path: Path) -> None:
    if path.is_symlink():
        layer.link(rel, str(path.readlink()))
    else:
        layer.file(rel, path.read_bytes(), stat.S_IMODE(path.stat().st_mode))


def _add_applets(layer: oci.Layer, rel: str, busybox: Path) -> None:
    """A link to busybox for each applet, where `busybox --install` puts it."""
    for applet in run_tool([str(busybox), "--list-full"]).split():
        if applet not in layer and applet != rel:
            layer.link(applet, "/" + rel)


def export(archive: Path, dest: Path) -> Path:
    """Put a cached archive at `dest`: a hard link where possible (it is only
    read), else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(archive, dest)
    except OSError:
        shutil.copy2(archive, dest)
    return dest


def build_workload_images(out: Path) -> dict[str, Path]:
    """Build (or find in the cache) every workload image and put its archive in
    `out`: name -> `out/<name>.tar` ("nginx", "busybox"); the references each
    carries are REFS[name]."""
    return {name: export(build_archive(r), out / f"{name}.tar") for name, r in RECIPES.items()}

"""A Triton Inference Server model repository for bundles (`edge-sdk triton`).

    REPO/
      edge_sdk_triton.json          marks the folder as written here (only such a folder is replaced)
      <model>/
        config.pbtxt                inputs, outputs, dynamic batching, instances, parameters
        edge_sdk_triton.json        the options the config was made with (a new version reuses them)
        1/model.py                  edge_sdk/serving/triton_model.py, verbatim
        1/bundle                    the bundle (directory, or archive file), verified after copying
        2/...                       a newer version (`add_version`); Triton's version policy serves the latest

The repository is self-contained: nothing outside it is read at load time except the serving
environment (numpy, onnxruntime, edge_sdk). Writes are atomic (temporary folder, then rename).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_sdk.atomic import atomic_directory, write_json, write_text

MARKER = "edge_sdk_triton.json"
FORMAT = "edge-sdk-triton-repository"
MODEL_TEMPLATE = Path(__file__).with_name("triton_model.py")
# Limits of the options (a typo such as a queue delay in nanoseconds is refused, not served)
MAX_INSTANCES = 64
MAX_QUEUE_DELAY_US = 1_000_000
MAX_BATCH = 256
KINDS = ("cpu", "gpu")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class RepositoryError(ValueError):
    """Bad options or inputs of a repository write; the message names the argument."""


@dataclass
class ServeOptions:
    """How every model of a repository is served (stored beside each config.pbtxt)."""

    instances: int = 1                 # instances per device (Triton instance_group count)
    kind: str = "cpu"                  # "cpu" (KIND_CPU) or "gpu" (KIND_GPU, one group on each of `gpus`)
    gpus: list[int] = field(default_factory=list)   # GPU indices with kind "gpu" (empty: all)
    max_batch: int = 8                 # Triton max_batch_size and the runtime's network batch
    preferred_batch: list[int] | None = None        # dynamic batching; None: from the bundle
    queue_delay_us: int = 500          # dynamic batching max_queue_delay_microseconds
    threads: int = 1                   # CPU threads of each instance's runtime
    precision: str = "fp32"
    backend: str = "onnxruntime"
    heatmaps: bool = True

    def check(self) -> None:
        def bounded(name, value, low, high):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise RepositoryError(f"{name}: expected an integer from {low} to {high}, got {value!r}")

        bounded("instances (--instances)", self.instances, 1, MAX_INSTANCES)
        bounded("max_batch (--max-batch)", self.max_batch, 1, MAX_BATCH)
        bounded("queue_delay_us (--queue-delay-us)", self.queue_delay_us, 0, MAX_QUEUE_DELAY_US)
        bounded("threads (--threads)", self.threads, 1, 1024)
        if self.kind not in KINDS:
            raise RepositoryError(f"kind (--kind): expected one of {KINDS}, got {self.kind!r}")
        for g in self.gpus:
            bounded("gpus (--gpus)", g, 0, 1023)
        if self.gpus and self.kind != "gpu":
            raise RepositoryError("gpus (--gpus): only with kind 'gpu'")
        if self.preferred_batch is not None:
            if not self.preferred_batch:
                raise RepositoryError("preferred_batch (--preferred-batch): expected at least one batch size")
            for b in self.preferred_batch:
                bounded("preferred_batch (--preferred-batch)", b, 1, self.max_batch)
        for name in ("precision", "backend"):
            value = getattr(self, name)
            if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", value):
                raise RepositoryError(f"{name}: expected a short lower-case name, got {value!r}")


def model_name(bundle: Path, manifest: dict) -> str:
    """A Triton model name for a bundle: the bundle folder's name (what a user called it)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", bundle.resolve().name.removesuffix(".tar"))
    return name.lstrip("._-") or "model"


def bundle_preferred_batch(bundle: Path, precision: str, max_batch: int) -> list[int]:
    """Preferred batch sizes from the bundle: the optimization profiles of its TensorRT engines for
    this precision (their 'opt' and 'max' batch, where the bundle has engines), else the powers of
    two from 4 up to ``max_batch`` and ``max_batch`` itself (batch 1 needs no batching)."""
    sizes = set()
    engines = bundle / "engines" if bundle.is_dir() else None
    if engines is not None and engines.is_dir():
        for manifest in engines.glob("*.json"):
            try:
                m = json.loads(manifest.read_text())
                if m.get("precision") == precision:
                    for profile in m.get("profiles", [])[:1]:
                        for s in profile.values():
                            sizes.update(int(s[k][0]) for k in ("opt", "max") if k in s)
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                continue  # not an engine manifest; the runtime judges engines itself
    sizes = {b for b in sizes if 1 <= b <= max_batch}
    if not sizes:
        sizes = {b for b in (4, 8, 16, 32, 64, 128, 256) if b <= max_batch} | {max_batch}
    return sorted(sizes)


def _dims(manifest: dict) -> tuple[list[int], list[int]]:
    """(IMAGE dims without the batch axis, HEATMAP dims): frames of a region bundle, the bundle's
    input size, or -1 (any size) where the bundle resizes other sizes itself."""
    inp = manifest["input"]
    c = int(inp["channels"])
    if manifest.get("regions"):
        h, w = int(manifest["frame"]["height"]), int(manifest["frame"]["width"])
    elif inp.get("on_size_mismatch") == "resize":
        h = w = -1
    else:
        h, w = int(inp["height"]), int(inp["width"])
    return [h, w, c], [h, w]


def model_config(name: str, manifest: dict, options: ServeOptions, preferred: list[int]) -> str:
    """config.pbtxt of one bundle (Triton's text protobuf)."""
    from edge_sdk.runtime import VERDICTS  # the C ABI's numbering, the one definition in Python

    image, heat = _dims(manifest)
    d = lambda dims: ", ".join(str(x) for x in dims)  # noqa: E731
    outputs = [("SCORE", "TYPE_FP32", [1], "raw score (NaN where not judged)"),
               ("NORMALIZED", "TYPE_FP32", [1], "normalized score, 0.5 at the threshold"),
               ("VERDICT", "TYPE_INT8", [1], ", ".join(f"{i} {v}" for i, v in enumerate(VERDICTS))),
               ("VERSION", "TYPE_INT64", [1], "model version that judged the image")]
    if options.heatmaps:
        outputs.append(("HEATMAP", "TYPE_FP32", heat, "raw anomaly map at the image's size"))
    regions = manifest.get("regions") or []
    if regions:
        r = [len(regions)]
        outputs += [("REGION_SCORES", "TYPE_FP32", r, "per region, in the order of parameter 'regions'"),
                    ("REGION_NORMALIZED", "TYPE_FP32", r, "per region"),
                    ("REGION_VERDICTS", "TYPE_INT8", r, "per region, numbered as VERDICT")]
    classes = [str(c["name"]) for c in (manifest.get("postprocess") or {}).get("classes") or []]
    if classes:
        outputs += [("CLASS_PROBABILITIES", "TYPE_FP32", [len(classes)],
                     "per class, in the order of parameter 'classes' (NaN where not judged)"),
                    ("TOP_CLASS", "TYPE_INT64", [1], "index into parameter 'classes', -1 where not judged")]
    lines = [f"# Written by edge-sdk triton for bundle model type {manifest['model']['type']!r}; "
             "inputs and outputs: edge_sdk/serving/triton_model.py",
             f'name: "{name}"', 'backend: "python"', f"max_batch_size: {options.max_batch}",
             "input [", f'  {{ name: "IMAGE" data_type: TYPE_UINT8 dims: [ {d(image)} ] }}'
             f"  # H, W, C ({manifest['input']['color_order']}){'; -1: any size, resized' if -1 in image else ''}",
             "]", "output ["]
    for i, (oname, dtype, dims, meaning) in enumerate(outputs):
        comma = "," if i < len(outputs) - 1 else ""
        lines.append(f'  {{ name: "{oname}" data_type: {dtype} dims: [ {d(dims)} ] }}{comma}  # {meaning}')
    lines += ["]", "dynamic_batching {", f"  preferred_batch_size: [ {d(preferred)} ]",
              f"  max_queue_delay_microseconds: {options.queue_delay_us}", "}",
              "# The latest version serves; a new version folder is loaded with the repository API and the",
              "# old one unloaded when its requests in flight are done.",
              "version_policy: { latest: { num_versions: 1 } }", "instance_group ["]
    if options.kind == "gpu":
        gpus = f" gpus: [ {d(options.gpus)} ]" if options.gpus else ""
        lines.append(f"  {{ count: {options.instances} kind: KIND_GPU{gpus} }}")
    else:
        lines.append(f"  {{ count: {options.instances} kind: KIND_CPU }}")
    lines.append("]")
    params = {"threads": str(options.threads), "precision": options.precision, "backend": options.backend,
              "verdicts": ",".join(VERDICTS)}
    if regions:
        params["regions"] = ",".join(r["name"] for r in regions)
    if classes:
        params["classes"] = ",".join(classes)
    for k, v in params.items():
        lines.append(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}')
    return "\n".join(lines) + "\n"


def _validated(bundle: str | os.PathLike) -> tuple[Path, dict]:
    from edge_sdk.bundle import BundleError, validate_bundle

    path = Path(bundle)
    if not os.path.exists(path):
        raise RepositoryError(f"bundle {path}: does not exist")
    try:
        return path, validate_bundle(path)
    except BundleError as exc:
        raise RepositoryError(f"bundle {path}: {exc}") from exc


def _write_version(folder: Path, bundle: Path) -> None:
    """model.py + a copy of the bundle, verified again after copying (a bad copy is not served)."""
    from edge_sdk.bundle import BundleError, validate_bundle

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MODEL_TEMPLATE, folder / "model.py")
    if bundle.is_dir():
        shutil.copytree(bundle, folder / "bundle", symlinks=False)
    else:
        shutil.copyfile(bundle, folder / "bundle")
    try:
        validate_bundle(folder / "bundle")
    except BundleError as exc:
        raise RepositoryError(f"bundle {bundle}: the copy in the repository does not verify: {exc}") from exc


def _model_files(model_dir: Path, name: str, manifest: dict, options: ServeOptions, bundle: Path) -> None:
    preferred = options.preferred_batch or bundle_preferred_batch(bundle, options.precision, options.max_batch)
    write_text(model_dir / "config.pbtxt", model_config(name, manifest, options, preferred))
    write_json(model_dir / MARKER, {"format": FORMAT, "options": asdict(options)})


def _is_repo(path: Path) -> bool:
    try:
        return json.loads((path / MARKER).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def write_repository(bundles, repo: str | os.PathLike, *, names: list[str] | None = None,
                     options: ServeOptions | None = None, overwrite: bool = False) -> dict[str, Path]:
    """Writes a model repository with one model (version 1) per bundle; returns name -> model
    folder. An existing ``repo`` is replaced only with ``overwrite`` and only when it is a
    repository written here (or an empty folder)."""
    options = options or ServeOptions()
    options.check()
    bundles = [Path(b) for b in bundles]
    if not bundles:
        raise RepositoryError("bundles: expected at least one bundle")
    checked = [_validated(b) for b in bundles]
    if names is not None and len(names) != len(bundles):
        raise RepositoryError(f"names: {len(names)} names for {len(bundles)} bundles")
    names = list(names) if names is not None else [model_name(p, m) for p, m in checked]
    for n in names:
        if not _NAME.match(n):
            raise RepositoryError(f"names: {n!r} is not a model name (letters, digits, '_', '.', '-'; 1-128)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RepositoryError(f"names: {dup} given to more than one bundle (name them with --name)")
    target = Path(repo)
    if os.path.lexists(target) and not overwrite:
        raise RepositoryError(f"repo: {target} exists; pass --overwrite (overwrite=True) to replace a repository "
                              f"written here, or --add-version to add a version to one of its models")
    try:
        with atomic_directory(target, is_ours=_is_repo, what="a model repository written by edge-sdk triton",
                              overwrite=overwrite) as tmp:
            for name, (path, manifest) in zip(names, checked):
                _write_version(tmp / name / "1", path)
                _model_files(tmp / name, name, manifest, options, path)
            write_json(tmp / MARKER, {"format": FORMAT, "models": names})
    except FileExistsError as exc:
        raise RepositoryError(f"repo: {exc}") from None
    return {n: target / n for n in names}


def versions(model_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def add_version(bundle, repo: str | os.PathLike, name: str | None = None) -> tuple[str, int]:
    """Adds the bundle as the next version of model ``name`` (default: the bundle's name) of an
    existing repository, with the options that model was written with; returns (name, version).
    The version folder appears at once (rename); Triton then loads it on the repository API's
    load call (`edge-sdk triton load` or tritonclient's load_model) and, with the version policy
    'latest 1', unloads the older one after its requests in flight."""
    repo = Path(repo)
    if not _is_repo(repo):
        raise RepositoryError(f"repo: {repo} is not a model repository written by edge-sdk triton")
    path, manifest = _validated(bundle)
    name = name or model_name(path, manifest)
    model_dir = repo / name
    if not (model_dir / MARKER).is_file():
        have = sorted(p.name for p in repo.iterdir() if (p / MARKER).is_file())
        raise RepositoryError(f"name: no model {name!r} in {repo} (models: {have})")
    stored = json.loads((model_dir / MARKER).read_text())["options"]
    options = ServeOptions(**stored)
    preferred = options.preferred_batch or bundle_preferred_batch(path, options.precision, options.max_batch)
    config = model_config(name, manifest, options, preferred)
    served = (model_dir / "config.pbtxt").read_text()
    strip = lambda text: [ln for ln in text.splitlines() if not ln.startswith("#")]  # noqa: E731
    if strip(config) != strip(served):
        raise RepositoryError(f"bundle {path}: its inputs or outputs differ from model {name!r}'s config.pbtxt "
                              f"(size, channels, regions or batching); serve it as a new model (--name)")
    version = (versions(model_dir) or [0])[-1] + 1
    with atomic_directory(model_dir / str(version), is_ours=lambda p: False, what="a version folder",
                          overwrite=False) as tmp:
        _write_version(tmp, path)
    return name, version

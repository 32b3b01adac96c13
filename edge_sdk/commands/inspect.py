"""`edge-sdk inspect BUNDLE`: the manifest of a bundle in a readable form (validated first)."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("inspect", help="print a bundle's manifest in a readable form (after validating it)",
                       description="Validates BUNDLE (directory or archive) with the runtime's validator and "
                                   "prints what it holds: model, input spec, networks, arrays, post-processing, "
                                   "calibration, regions and files.")
    p.add_argument("bundle", help="bundle directory or archive")
    p.add_argument("--json", nargs="?", const="-", metavar="OUT",
                   help="the manifest as JSON instead: to OUT, or printed when no file is given")
    p.set_defaults(func=run)


def _shape(s) -> str:
    return "(" + ", ".join("N" if d == -1 else str(d) for d in s) + ")"


def describe(m: dict, onnx: dict[str, dict] | None = None) -> str:
    """Readable text of a validated manifest (and the ONNX facts read from each network file)."""
    lines = []
    add = lines.append
    model = m["model"]
    add(f"bundle schema {m['schema_version']} ({m['format']}), written by edge-sdk {m['sdk_version']}")
    add(f"model: {model['type']}" + (f" ({model['name']})" if model.get("name") else ""))
    i = m["input"]
    add(f"input: {i['height']} x {i['width']} x {i['channels']} {i['color_order']}, dtypes {', '.join(i['dtypes'])}, "
        f"values {i['value_range'][0]:g}..{i['value_range'][1]:g} x {i['scale']:.6g}, "
        f"{i['resize']} resize (antialias {str(i['antialias']).lower()}), other sizes: {i['on_size_mismatch']}")
    add(f"       mean {[round(v, 6) for v in i['mean']]}, std {[round(v, 6) for v in i['std']]}")
    add("networks:")
    for n in m["networks"]:
        add(f"  {n['name']} [{n['precision']}] {n['file']}")
        for t in n["inputs"]:
            add(f"    in  {t['name']} {_shape(t['shape'])} {t['dtype']}" + (f"  {t['meaning']}" if t.get("meaning") else ""))
        for t in n["outputs"]:
            add(f"    out {t['name']} {_shape(t['shape'])} {t['dtype']}" + (f"  {t['meaning']}" if t.get("meaning") else ""))
        if onnx and n["file"] in onnx:
            o = onnx[n["file"]]
            add(f"    onnx: opset {o['opsets'].get('', '?')}, ir {o['ir_version']}, {o['node_count']} nodes, "
                f"producer {o['producer_name']} {o['producer_version']}")
    add(f"arrays ({m['arrays']['file']}):")
    for name, t in m["arrays"]["tensors"].items():
        add(f"  {name} {t['dtype']} {_shape(t['shape'])}")
    pp = dict(m["postprocess"])
    add(f"post-processing: {pp.pop('kind')}")
    for k, v in pp.items():
        add(f"  {k}: {json.dumps(v)}")
    c = m["calibration"]
    add(f"decision: reject when score >= {c['threshold']:.6g}; normalized = clip((score - {c['threshold']:.6g}) / "
        f"({c['max']:.6g} - {c['min']:.6g}) + 0.5, 0, 1); review band {m.get('decision', {}).get('review_band', 0):g}")
    if m.get("regions"):
        f = m["frame"]
        add(f"regions (frames {f['width']} x {f['height']}):")
        for r in m["regions"]:
            add(f"  {r['name']}: x {r['x']} y {r['y']} {r['width']} x {r['height']}, threshold {r['threshold']:.6g}")
    add("files:")
    for name, e in m["files"].items():
        add(f"  {name} {e['bytes']} bytes sha256 {e['sha256']}")
    return "\n".join(lines)


def run(args) -> int:
    from edge_sdk.bundle import BundleError, read_bundle
    from edge_sdk.cli import UserError
    from edge_sdk._native import core

    try:
        b = read_bundle(args.bundle)
    except (BundleError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    if args.json == "-":
        print(json.dumps(b.manifest, indent=2))
        return 0
    if args.json:
        from edge_sdk.atomic import write_json

        write_json(args.json, b.manifest)
        print(f"manifest -> {args.json}")
        return 0
    onnx = {f: core.onnx_info(data, f) for f, data in b.networks.items()}
    print(describe(b.manifest, onnx))
    return 0

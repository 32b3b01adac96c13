"""How much two shortcuts change a classifier's validation figures, crossed on its saved weights and
validation split: the training cache's input (each image resized once to the input size and rounded
to uint8) against the model's own (resized in float, as the runtime does), and the map measured at
the input size against the masks resized to it, against the map at each image's own size. The
training batches come from that cache; the per-epoch validation goes through the model's own path
(DefectClassifier.measure), the one the saved figures come from. This script measures macro-F1 and
CAM accuracy for the four combinations and counts the validation images whose top class differs
between the two inputs.

Usage: python benchmarks/classifier_validation_paths.py MODEL_DIR --data DATA --layout mtd
       [--split-seed 0] [--threads 2] [--out benchmarks/results/classifier_validation_paths.json]
"""

from __future__ import annotations

import argparse

from _common import REPO, pin_threads, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--data", required=True)
    ap.add_argument("--layout", required=True, choices=("mvtec", "folder", "mtd", "classes"))
    ap.add_argument("--split-seed", type=int, default=0, help="the seed the model was trained with (default 0)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "classifier_validation_paths.json"))
    args = ap.parse_args()
    if not 1 <= args.threads <= 256:
        raise SystemExit("--threads: 1..256")
    pin_threads(args.threads)

    import numpy as np
    import torch

    from edge_sdk.class_metrics import cam_localization, classification_metrics
    from edge_sdk.data import load_dataset
    from edge_sdk.data.split import split_labelled
    from edge_sdk.models import load_model
    from edge_sdk.models.backbone import IMAGENET_MEAN, IMAGENET_STD
    from edge_sdk.models.classifier_train import ResizedImages, normalize, resize_mask
    from edge_sdk.models.contract import maps_at_sizes

    model = load_model(args.model_dir)
    if model.kind != "classifier":
        raise SystemExit(f"{args.model_dir}: a {model.kind} model, not a classifier")
    data = load_dataset(args.data, args.layout, "train", seed=args.split_seed, classes=True)
    val, _ = split_labelled(data, model.val_fraction, model.seed)  # as training held it out
    samples = [val[i] for i in range(len(val))]
    y = np.array([model.class_index(s.defect_type) for s in samples])
    cache = ResizedImages(lambda i: samples[i].image, len(samples), model.input_size, max_bytes=1 << 30,
                          progress=False)
    inputs = {"uint8 cache": lambda idx: normalize(cache.batch(idx), IMAGENET_MEAN, IMAGENET_STD),
              "float": lambda idx: torch.from_numpy(model.preprocess([samples[i].image for i in idx]))}
    rows, tops = [], {}
    for name, make in inputs.items():
        probs, cams = [], []
        with torch.inference_mode():
            for b in range(0, len(samples), model.batch_size):
                p, _, cam = model.graph(make(list(range(b, min(b + model.batch_size, len(samples))))))
                probs.append(p.numpy())
                cams.append(cam.numpy())
        top = np.concatenate(probs).argmax(axis=1)
        cam = np.ascontiguousarray(np.concatenate(cams), dtype=np.float32)
        tops[name] = top
        macro_f1 = classification_metrics(y, top, model.classes)["macro_f1"]
        chosen = [i for i in range(len(samples)) if y[i] != model.good and top[i] == y[i]
                  and samples[i].mask is not None and np.asarray(samples[i].mask).any()]
        for where in ("input", "own"):
            if where == "input":
                sizes = [model.input_size] * len(chosen)
                masks = [resize_mask(samples[i].mask, model.input_size) for i in chosen]
            else:
                sizes = [samples[i].image.shape[:2] for i in chosen]
                masks = [samples[i].mask_or_zeros() for i in chosen]
            loc = cam_localization(maps_at_sizes(cam[chosen], sizes, model.blur_sigma), masks)
            rows.append({"input": name, "map_size": where, "macro_f1": macro_f1,
                         "cam_accuracy": loc["cam_accuracy"], "cam_images": loc["cam_images"]})
            print(f"{name:11s} input, map at {where:5s} size: macro-F1 {macro_f1:.3f}, "
                  f"CAM accuracy {loc['cam_accuracy']:.3f} ({loc['cam_images']} images)")
    differ = int((tops["uint8 cache"] != tops["float"]).sum())
    print(f"validation images whose top class differs between the two inputs: {differ} of {len(samples)}")
    write_json(args.out, {"model_dir": str(args.model_dir), "validation_images": len(samples), "rows": rows,
                          "top_class_differs": differ})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

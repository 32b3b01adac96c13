"""Command-line options of the supervised defect classifier (`edge-sdk train --model classifier`) and
how train / eval open its data: every class in both splits (`load_dataset(..., classes=True)`).
Not a subcommand: edge_sdk.cli skips modules whose name starts with "_"."""

from __future__ import annotations

from edge_sdk.cli import UserError, bounded_float, bounded_int


def is_supervised(name: str) -> bool:
    from edge_sdk.models import model_class

    return model_class(name).family == "supervised"


def dataset_options(name: str) -> dict:
    """Extra `open_dataset` arguments for a model: labelled splits of every class for the
    supervised ones, nothing for the anomaly models."""
    return {"classes": True} if is_supervised(name) else {}


def add_classifier_arguments(p) -> None:
    g = p.add_argument_group("classifier (supervised: trained on good and defective images, every class in "
                             "both splits of the data)")
    g.add_argument("--class-val-fraction", type=bounded_float("--class-val-fraction", 0.01, 0.9), default=0.2,
                   metavar="FRACTION", help="share of each class of the labelled training split held out (seeded, "
                                            "stratified) for early stopping and the thresholds (default 0.2)")
    g.add_argument("--lr", type=bounded_float("--lr", 1e-8, 1.0), default=1e-3,
                   help="AdamW learning rate, cosine decay (default 1e-3)")
    g.add_argument("--backbone-lr", type=bounded_float("--backbone-lr", 0.0, 1.0), default=0.1, metavar="FACTOR",
                   help="learning rate of the pretrained layers as a share of --lr (the new head's; default 0.1)")
    g.add_argument("--freeze-blocks", type=bounded_int("--freeze-blocks", 0, 16), default=5, metavar="N",
                   help="keep the stem and the first N of the 16 blocks as pretrained (default 5: up to stride 8)")
    g.add_argument("--patience", type=bounded_int("--patience", 1, 10_000), default=3,
                   help="epochs without a better validation figure (--select-by) before training stops (default 3)")
    g.add_argument("--class-weight-power", type=bounded_float("--class-weight-power", 0.0, 1.0), default=1.0,
                   metavar="P", help="loss weight of class k is (n / (K n_k))^P: 1 balances the classes fully "
                                     "(default), 0.5 less steeply, 0 not at all")
    g.add_argument("--cam-guidance", type=bounded_float("--cam-guidance", 0.0, 100.0), default=0.0, metavar="W",
                   help="weight of a loss that pulls the activation map of defective training images onto "
                        "their defect masks (0: off, the default; images without a mask are not guided)")
    g.add_argument("--cam-guidance-decay", type=bounded_float("--cam-guidance-decay", 0.0, 1.0), default=0.0,
                   metavar="FRACTION", help="let the --cam-guidance weight fall linearly to 0 over this share of "
                                            "the training steps, so the last ones learn the classes alone "
                                            "(0: constant, the default)")
    g.add_argument("--cam-guidance-loss", choices=("mass", "peak"), default="mass",
                   help="what --cam-guidance asks of the map: mass (its softmax mass on the defect's cells; "
                        "the default) or peak (only its highest cell on the defect, by a margin; no pull once "
                        "it is)")
    g.add_argument("--select-by", choices=("macro_f1", "macro_f1+cam"), default="macro_f1",
                   help="the validation figure that picks the kept epoch and, with --patience, stops training: "
                        "macro_f1 (the default) or macro_f1+cam (the mean of it and the CAM accuracy, measured "
                        "each epoch on the validation images with a defect mask)")
    g.add_argument("--hflip", action="store_true",
                   help="also flip training images left-right (rotation within +-pi/8 and vertical flips always)")
    g.add_argument("--cam-stride", type=int, choices=(8, 16, 32), default=16,
                   help="stride of the last feature map and its activation map: 16 (default), 8 (finer maps, "
                        "several times the training cost) or 32")
    g.add_argument("--cam-dense", action="store_true",
                   help="evaluate the trained network at half its stride for its activation map (twice the "
                        "grid along each axis; same weights and probabilities; about 3 times the inference "
                        "cost); with --init-from and --epochs 0, applied to a trained model without training")
    g.add_argument("--tta", action="store_true",
                   help="test-time flips: average the probabilities and the activation map over the image and "
                        "its flipped copies that training augments with (vertical; with --hflip also horizontal "
                        "and both): 2 (4) times the inference cost; with --init-from and --epochs 0, applied to a "
                        "trained model without training")
    g.add_argument("--max-false-accept", type=bounded_float("--max-false-accept", 0.0, 0.99), default=0.01,
                   metavar="SHARE", help="target share of defective validation images accepted; sets the accept "
                                         "threshold on P(good) (default 0.01)")
    g.add_argument("--max-false-reject", type=bounded_float("--max-false-reject", 0.0, 0.99), default=0.01,
                   metavar="SHARE", help="target share of good validation images rejected; sets the reject "
                                         "threshold on the top defect class (default 0.01)")
    g.add_argument("--synthetic", type=bounded_int("--synthetic", 0, 100_000), default=0, metavar="N",
                   help="add N images per defect class made by pasting the training split's own defects into "
                        "its good images (default 0)")
    g.add_argument("--defects-per-class", type=bounded_int("--defects-per-class", 1, 10**7), metavar="N",
                   help="keep only N real training images of each defect class (seeded): training with few defects")
    g.add_argument("--init-from", metavar="MODEL_DIR",
                   help="start from the weights of a classifier trained before with the same classes and split "
                        "(e.g. refine a stride-16 model at --cam-stride 8) instead of the ImageNet ones")
    g.add_argument("--distill-from", metavar="MODEL_DIR",
                   help="a classifier trained before with the same classes and split whose predictions on each "
                        "training batch this one also learns (knowledge distillation), so that its classes hold "
                        "while --cam-guidance moves the map")
    g.add_argument("--distill-weight", type=bounded_float("--distill-weight", 0.0, 100.0), default=1.0, metavar="W",
                   help="weight of the --distill-from loss (default 1)")
    g.add_argument("--good-class", default="good", metavar="NAME", help="name of the good class (default good)")
    g.add_argument("--max-cache-mb", type=bounded_int("--max-cache-mb", 16, 1 << 20), default=2048,
                   help="memory for the resized training images; beyond it they are read again each epoch "
                        "(default 2048)")


def build_classifier(args):
    """A DefectClassifier from parsed `edge-sdk train` arguments."""
    from edge_sdk.models import model_class

    try:
        return model_class(args.model)(
            input_size=args.input_size or 160, batch_size=max(2, args.batch_size),
            epochs=8 if args.epochs is None else args.epochs,
            lr=args.lr, backbone_lr=args.backbone_lr, freeze_blocks=args.freeze_blocks, patience=args.patience,
            val_fraction=args.class_val_fraction, class_weight_power=args.class_weight_power,
            cam_guidance=args.cam_guidance, cam_guidance_decay=args.cam_guidance_decay,
            cam_guidance_loss=args.cam_guidance_loss, select_by=args.select_by,
            hflip=args.hflip,
            cam_stride=args.cam_stride, cam_dense=args.cam_dense, tta=args.tta,
            blur_sigma=args.blur_sigma,
            max_false_accept=args.max_false_accept,
            max_false_reject=args.max_false_reject, synthetic=args.synthetic,
            defects_per_class=args.defects_per_class, max_cache_mb=args.max_cache_mb, good_class=args.good_class,
            init_from=args.init_from, distill_from=args.distill_from, distill_weight=args.distill_weight,
            seed=args.seed)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from exc

"""An anomaly model and a defect classifier on one line: the anomaly bundle decides accept / reject /
review (trained on good parts only, it also catches defect types nobody has seen yet), and a
classifier bundle (postprocess kind "classifier") names the defect type of the units the anomaly
bundle did not accept. The classifier never changes a verdict: a new kind of defect that it does
not know is still rejected, named by its closest known class, with `classifier_agrees` False when
the classifier itself would call the unit good.

Two bundles, each verified and versioned on its own (a retrained classifier does not touch the
validated anomaly decision); the composition is this host-side rule, the same in the C ABI (two
handles: edge_run on the anomaly bundle, then edge_run_classes on the units it did not accept;
docs/C_API.md) and in `edge-sdk predict ANOMALY_BUNDLE ... --name-defects CLASSIFIER_BUNDLE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_sdk.runtime import Results, Runtime

__all__ = ["DefectNaming", "NamedResults"]


@dataclass
class NamedResults:
    """The anomaly bundle's results, with per image: defect_type (str, or None where not named:
    accepted, or the classifier could not judge it), defect_probability (float32, NaN where not
    named), classifier_agrees (bool: the classifier's own top class is a defect class) and the
    classifier's class_probabilities (N, K) float32 (NaN rows where it did not run)."""

    anomaly: Results
    class_names: list[str]
    defect_type: list[str | None]
    defect_probability: np.ndarray
    classifier_agrees: np.ndarray
    class_probabilities: np.ndarray

    def __len__(self) -> int:
        return len(self.anomaly)

    @property
    def verdicts(self) -> np.ndarray:
        return self.anomaly.verdicts


class DefectNaming:
    """``DefectNaming(anomaly_bundle, classifier_bundle, **runtime options).predict(images)``.

    name_review: also name units the anomaly bundle sends to review (the operator sees a likely
    defect type); False names rejected units only. Runtime options (device, threads, backend, ...)
    apply to both bundles; pass opened `Runtime`s to set them apart."""

    def __init__(self, anomaly, classifier, *, name_review: bool = True, **runtime_options):
        self.anomaly = anomaly if isinstance(anomaly, Runtime) else Runtime(anomaly, **runtime_options)
        self.classifier = classifier if isinstance(classifier, Runtime) else Runtime(classifier, **runtime_options)
        if self.anomaly.class_names is not None:
            raise ValueError(f"anomaly: {self.anomaly.path} is a classifier bundle; give the anomaly model's bundle")
        if self.classifier.class_names is None:
            raise ValueError(f"classifier: {self.classifier.path} is not a classifier bundle (postprocess kind "
                             f"'classifier'); train one with `edge-sdk train --model classifier`")
        if self.anomaly.manifest.get("regions"):
            raise ValueError(f"anomaly: {self.anomaly.path} cuts frames into regions; naming defects works on "
                             "whole images (judge the regions' patches with the classifier instead)")
        ca, cc = self.anomaly.manifest["input"]["channels"], self.classifier.manifest["input"]["channels"]
        if ca == 3 and cc == 1:
            raise ValueError(f"classifier: {self.classifier.path} reads gray images and {self.anomaly.path} colour "
                             "ones; train the classifier on colour images")
        self._to_classifier = (lambda a: np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a) if cc == 3 \
            else (lambda a: a)
        self.name_review = bool(name_review)
        self.good = int(self.classifier.manifest["postprocess"]["good_class"])

    def predict(self, images, *, on_error: str = "raise", color_order: str = "rgb") -> NamedResults:
        from edge_sdk.runtime import _as_image_list

        arrays, single = _as_image_list(images)
        res = self.anomaly.predict(arrays, on_error=on_error, color_order=color_order)
        n, k = len(res), len(self.classifier.class_names)
        probs = np.full((n, k), np.nan, np.float32)
        wanted = ("reject", "review") if self.name_review else ("reject",)
        todo = [i for i in range(n) if res.verdicts[i] in wanted and res.errors[i] is None]
        if todo:
            cls = self.classifier.predict([self._to_classifier(arrays[i]) for i in todo], on_error="review",
                                          color_order=color_order)
            probs[todo] = cls.class_probabilities
        defect = np.delete(np.arange(k), self.good)
        judged = np.isfinite(probs).all(axis=1)
        best = defect[np.argmax(np.where(judged[:, None], probs[:, defect], -np.inf), axis=1)]
        names = [self.classifier.class_names[b] if judged[i] else None for i, b in enumerate(best)]
        p_best = np.where(judged, probs[np.arange(n), best], np.nan).astype(np.float32)
        agrees = judged & (np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1) != self.good)
        return NamedResults(res, list(self.classifier.class_names), names, p_best, agrees, probs)

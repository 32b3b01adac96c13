"""An edge-sdk bundle served by Triton's Python backend (copied into each version folder of a model
repository by `edge-sdk triton`; the same file for every bundle).

Triton starts one process per model instance; each opens `edge_sdk.Runtime` on the bundle of its
version folder (``<model>/<version>/bundle``) on the instance's device (KIND_GPU -> "cuda:N",
KIND_CPU -> "cpu"). Opening the bundle verifies it as the runtime always does (manifest, sizes and
sha256 of every file, ONNX against the manifest, the signature where keys are configured): a
tampered bundle raises here and Triton marks the version unavailable.

Requests: IMAGE, uint8 (N, H, W, C). Triton's dynamic batcher hands several requests to one
`execute`; their images are judged in one `Runtime.predict` call and split back per request.
Responses, per image: SCORE (raw score), NORMALIZED (0.5 at the threshold), VERDICT (the C ABI's
codes, `edge_sdk.runtime.VERDICTS`: 0 review, 1 accept, 2 reject), HEATMAP (where enabled),
REGION_SCORES / REGION_NORMALIZED / REGION_VERDICTS (bundles with regions), CLASS_PROBABILITIES /
TOP_CLASS (classifier bundles) and VERSION (the model version that judged it). An image the runtime cannot judge is "review" with a NaN score; a request
that cannot be judged at all gets an error, never a verdict.
"""

import json
import os
import sys

# The backend's stub runs an isolated interpreter that ignores PYTHONPATH: its folders (the serving
# environment's packages and edge_sdk, set by `edge-sdk triton serve`) are put first on sys.path.
for _p in reversed([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

import edge_sdk  # noqa: E402
from edge_sdk.runtime import VERDICTS  # noqa: E402

REVIEW = VERDICTS.index("review")


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.version = int(args["model_version"])
        if args["model_instance_kind"] == "GPU":
            device = f"cuda:{int(args['model_instance_device_id'])}"
        else:
            device = "cpu"
        bundle = os.path.join(args["model_repository"], args["model_version"], "bundle")
        self.outputs = {o["name"] for o in config["output"]}
        self.rt = edge_sdk.Runtime(bundle, device=device, threads=int(params.get("threads", "1")),
                                   precision=params.get("precision", "fp32"),
                                   backend=params.get("backend", "onnxruntime"),
                                   max_batch=int(config.get("max_batch_size") or 1),
                                   heatmaps="HEATMAP" in self.outputs)
        self.regions = len(self.rt.region_names)
        self.classes = "CLASS_PROBABILITIES" in self.outputs
        pb_utils.Logger.log_info(f"edge-sdk: {config['name']} version {self.version} on {device}: {self.rt!r}")

    def execute(self, requests):
        images, spans, responses = [], [], [None] * len(requests)
        for i, request in enumerate(requests):
            batch = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            if batch.shape[0] == 0:
                responses[i] = self._error("IMAGE: empty batch (0 images); send at least one image")
                continue
            spans.append((i, len(images), len(images) + batch.shape[0]))
            images.extend(batch)
        if images:
            try:
                res = self.rt.predict(images, on_error="review")
            except Exception as exc:  # the whole call failed: every request gets the error, no verdict
                for i, _, _ in spans:
                    responses[i] = self._error(f"edge-sdk runtime: {exc}")
                return responses
            for i, a, b in spans:
                responses[i] = pb_utils.InferenceResponse(self._tensors(res, a, b, images[a].shape[:2]))
        return responses

    def _tensors(self, res, a, b, size):
        n = b - a
        out = [pb_utils.Tensor("SCORE", res.scores[a:b].reshape(n, 1)),
               pb_utils.Tensor("NORMALIZED", res.normalized[a:b].reshape(n, 1)),
               pb_utils.Tensor("VERDICT", res.verdict_codes[a:b].astype(np.int8).reshape(n, 1)),
               pb_utils.Tensor("VERSION", np.full((n, 1), self.version, np.int64))]
        if "HEATMAP" in self.outputs:
            maps = np.full((n, *size), np.nan, np.float32)  # NaN where an image was not judged
            for k in range(n):
                if res.heatmaps[a + k] is not None:
                    maps[k] = res.heatmaps[a + k]
            out.append(pb_utils.Tensor("HEATMAP", maps))
        if self.regions:
            r = res.regions
            codes = np.array([[VERDICTS.index(str(v)) for v in row] for row in r.verdicts[a:b]], np.int8)
            out += [pb_utils.Tensor("REGION_SCORES", np.ascontiguousarray(r.scores[a:b])),
                    pb_utils.Tensor("REGION_NORMALIZED", np.ascontiguousarray(r.normalized[a:b])),
                    pb_utils.Tensor("REGION_VERDICTS", codes.reshape(n, self.regions))]
        if self.classes:
            out += [pb_utils.Tensor("CLASS_PROBABILITIES", np.ascontiguousarray(res.class_probabilities[a:b])),
                    pb_utils.Tensor("TOP_CLASS", res.top_class[a:b].astype(np.int64).reshape(n, 1))]
        return out

    @staticmethod
    def _error(message):
        return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))

    def finalize(self):
        self.rt = None

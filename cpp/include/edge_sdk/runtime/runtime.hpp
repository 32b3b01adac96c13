// The inference runtime: a validated bundle, a network backend and the post-processing kernels,
// with every buffer allocated at load (or on the first call with a larger image) and reused.
//
//   images (HWC, uint8 or float32, any count, any size) -> [regions: cut each frame]
//   -> preprocess kernel -> network (backend) -> post-processing kernels (per postprocess.kind)
//   -> raw score, normalized score, verdict, heatmap at the image's own size
//
// Verdicts are three-way. "review" means the runtime could not judge the image (invalid image,
// non-finite score, score inside the review band around the threshold): an image is never
// accepted unless it was judged. Reject when score >= threshold (the rule of edge_sdk.calibration;
// decision_math.hpp); classifier bundles are judged on their class probabilities instead
// (classify_verdict: reject on a confident defect class, accept on a confident good class, else
// review).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge_sdk/runtime/backend.hpp"
#include "edge_sdk/runtime/bundle.hpp"
#include "edge_sdk/runtime/decision_math.hpp"
#include "edge_sdk/kernels/preprocess.hpp"

namespace edge {

// Verdict (decision_math.hpp) has the C ABI's codes: 0 review, 1 accept, 2 reject.
const char* verdict_name(Verdict v);  // "accept", "reject", "review"

struct RuntimeOptions {
  std::string device = "cpu";        // "cpu", or "cuda[:N]" (network on ONNX Runtime's CUDA provider)
  std::string backend = "onnxruntime";  // or "openvino" / "tensorrt" / "auto" (backend.hpp)
  std::string provider;              // ONNX Runtime provider; "" = from device ("cpu" / "cuda"), or "tensorrt"
  int threads = 0;                   // CPU threads for the kernels and the network; 0 = all cores
  std::string precision = "fp32";    // network variant of the bundle
  std::string onnxruntime_library;   // "" = search (see ort_library.hpp)
  std::string openvino_library;      // "" = search (see openvino_library.hpp)
  std::string openvino_device;       // OpenVINO backend: "CPU" (""), "GPU", "NPU", "AUTO" (OpenVINO's names)
  int64_t max_batch = 16;            // network batch; larger calls run in chunks of this size
  bool heatmaps = true;              // compute and return heatmaps
  int warmup = 1;                    // warm-up runs at load
  double review_band = -1.0;         // half-width of the review band (normalized units); < 0 = the bundle's
  std::string engines_dir;           // TensorRT backend: engine folder ("" = BUNDLE/engines)
  bool cuda_graph = false;           // TensorRT backend: replay each engine's work as a CUDA graph
  std::string trt_cache_dir;         // ONNX Runtime's TensorRT provider: engine cache folder ("" = none)
  // Ed25519 public keys (PEM files or folders of them) the bundle's signature must verify against,
  // besides those of EDGE_SDK_TRUSTED_KEYS; with none, signatures are not checked (bundle.hpp).
  std::vector<std::string> trusted_keys;
};

// One image: HWC, contiguous rows, RGB (or BGR, color_order) or single channel. dtype "uint8" or
// "float32" (float pixels are scaled like uint8 ones, by input.scale: give them in
// input.value_range).
struct ImageView {
  const void* data = nullptr;
  DType dtype = DType::U8;
  int64_t height = 0, width = 0, channels = 0;
  ColorOrder color_order = ColorOrder::RGB;  // of a 3-channel image (preprocess.hpp)
};

struct RegionResult {
  float score = 0.0f, normalized = 0.0f;
  Verdict verdict = Verdict::Review;
};

struct ImageResult {
  float score = 0.0f;       // raw score (NaN when not judged)
  float normalized = 0.0f;  // calibrated: clip((score - threshold) / (max - min) + 0.5, 0, 1)
  Verdict verdict = Verdict::Review;
  std::string error;        // why the image was not judged ("" when it was)
  bool invalid_input = false;  // the error is the image's own (dtype, channels, size), not the runtime's
  bool failed = false;         // the network or a kernel failed on it (error says which); neither flag:
                               // the pipeline ran but the score is not finite
  int64_t heatmap_offset = 0, heatmap_height = 0, heatmap_width = 0;  // into Results::heatmaps
  int64_t top_class = -1;   // classifier bundles: the most probable class (-1 when not judged)
};

// Wall-clock milliseconds per stage of the last call (monotonic clock; on the CPU path the
// host<->device copies are 0). `maps` is the part of `postprocess` spent resizing and blurring
// each unit's anomaly map (heatmaps, and map-based image scores); the rest of `postprocess` is the
// model's scoring kernels (SSIM, Mahalanobis, k-NN, ...).
struct StageTimes {
  double preprocess = 0, host_to_device = 0, network = 0, postprocess = 0, device_to_host = 0, decision = 0,
         total = 0, maps = 0;
};

struct Results {
  std::vector<ImageResult> images;
  std::vector<RegionResult> regions;  // images x regions, row-major ("" when no regions)
  std::vector<RegionResult> groups;   // images x region groups (group_result), row-major
  std::vector<float> heatmaps;        // raw anomaly maps, concatenated (see ImageResult offsets)
  StageTimes times;
  int64_t judged = 0;                 // images with a verdict computed from a finite score
  // Classifier bundles (postprocess.kind "classifier"): K class probabilities per image, image-major
  // (NaN rows where not judged); class_count is 0 and the vector empty for the other kinds.
  int64_t class_count = 0;
  std::vector<float> class_probabilities;
};

class Runtime {
 public:
  // Loads and validates the bundle (load_bundle), creates the backend, allocates buffers and
  // warms up. Throws BundleError / BackendError / ArgumentError naming the file, field or option.
  static std::unique_ptr<Runtime> open(const std::string& bundle_path, const RuntimeOptions& options = {});
  // Over an already loaded (validated) bundle, shared read-only with other runtimes: the C ABI's
  // contexts, and runtimes opened twice from the same bundle, keep one copy of its arrays and
  // network bytes.
  static std::unique_ptr<Runtime> open(std::shared_ptr<const Bundle> bundle, const RuntimeOptions& options = {});
  virtual ~Runtime() = default;

  virtual const Manifest& manifest() const = 0;
  virtual const RuntimeOptions& options() const = 0;
  virtual std::string backend_description() const = 0;
  // Names of the regions (empty without regions); results hold them in this order.
  virtual std::vector<std::string> region_names() const = 0;
  // Names of the region groups (regions[].group: e.g. the vials of a strip), in result order.
  std::vector<std::string> group_names() const { return region_groups(manifest().regions).names; }
  // Classifier bundles: the class names by id (Results::class_probabilities columns) and their
  // decision rule; empty / default for the other kinds.
  virtual std::vector<std::string> class_names() const = 0;
  virtual ClassRule class_rule() const = 0;

  // Judges `n` images into `out` (resized to n; its buffers are reused across calls). Problems
  // of one image (wrong channels, size, dtype) make that image "review" with an error message
  // (invalid_input set); so does a failure of the network or of a kernel on it. The other images
  // are judged. Throws ArgumentError only for an unusable call (null pointer). Calls on one
  // Runtime are serialized (one Runtime per thread runs them in parallel).
  virtual void predict(const ImageView* images, int64_t n, Results& out) = 0;

  // Called from another thread: the network call of a predict() in progress stops soon (where the
  // backend can interrupt it: ONNX Runtime between graph nodes); that call's images are then
  // "review" with a "network failed" error. Used by the C ABI when a cycle's deadline has passed.
  virtual void cancel() noexcept = 0;
};

}  // namespace edge

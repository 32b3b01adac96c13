// The device path of the TensorRT backend (../device_cycle.hpp): one TrtPipeline (with its device
// post-processing and map buffers) per image size seen, over the engines the backends loaded.
#include "../device_cycle.hpp"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <map>
#include <tuple>

#include "device_post.hpp"
#include "edge_sdk/runtime/errors.hpp"
#include "trt_backend.hpp"
#include "trt_pipeline.hpp"

namespace edge {
namespace {

class TrtDeviceCycle final : public DeviceCycle {
 public:
  TrtDeviceCycle(const Bundle& bundle, const RuntimeOptions& options, std::vector<trt::TrtEngine*> engines,
                 const trt::TrtTensor& input, int64_t max_batch)
      : bundle_(bundle), engines_(std::move(engines)) {
    const Manifest& m = bundle.manifest;
    spec_.input_tensor = input.name;
    PreprocessParams& p = spec_.preprocess;
    p.out_h = m.input.height;
    p.out_w = m.input.width;
    p.channels = static_cast<int>(m.input.channels);
    p.scale = static_cast<float>(m.input.scale);
    p.antialias = m.input.antialias;
    for (int c = 0; c < p.channels; ++c) {
      p.mean[c] = m.input.mean[static_cast<size_t>(c)];
      p.std[c] = m.input.std[static_cast<size_t>(c)];
    }
    spec_.calibration = Calibration{static_cast<float>(m.calibration.threshold), static_cast<float>(m.calibration.min),
                                    static_cast<float>(m.calibration.max)};
    spec_.review_band = static_cast<float>(options.review_band >= 0 ? options.review_band : m.decision.review_band);
    spec_.cuda_graph = options.cuda_graph;
    arrays_ = std::make_shared<const trt::DeviceArrays>(bundle, engines_.front()->device_index());
    pointers_.resize(static_cast<size_t>(max_batch));
    normalized_.resize(static_cast<size_t>(max_batch));
    verdicts_.resize(static_cast<size_t>(max_batch));
    // The model's own input size, built now: a kind without a device implementation is known at
    // load (make_device_cycle then keeps the host path), and the warm-up image uses this size.
    entry(m.input.height, m.input.width, m.input.channels);
  }

  bool run(const ImageView* images, int64_t n, float* scores, float* maps, StageTimes& times) override {
    if (n < 1 || n > static_cast<int64_t>(pointers_.size())) return false;
    const ImageView& a = images[0];
    for (int64_t i = 0; i < n; ++i) {
      const ImageView& v = images[i];
      if (v.dtype != DType::U8 || v.height != a.height || v.width != a.width || v.channels != a.channels) return false;
      pointers_[static_cast<size_t>(i)] = static_cast<const uint8_t*>(v.data);
    }
    trt::TrtEngine& first = *engines_.front();
    if (n < first.profile_min_batch()) return false;
    // The calling thread may not have selected the engine's device yet (C ABI worker threads).
    const cudaError_t err = cudaSetDevice(first.device_index());
    if (err != cudaSuccess) throw trt::TrtError(std::string("cudaSetDevice: ") + cudaGetErrorString(err));
    Entry& e = entry(a.height, a.width, a.channels);
    // Every context's input shapes for this batch (a replayed graph assumes them).
    for (trt::TrtEngine* engine : engines_) engine->set_batch(n);
    trt::TrtPipelineResults r;
    r.scores = scores;
    r.normalized = normalized_.data();
    r.verdicts = verdicts_.data();
    r.maps = maps;
    e.pipeline->run(pointers_.data(), n, r);
    times.host_to_device += r.times.host_to_device;
    times.preprocess += r.times.preprocess;
    times.network += r.times.network;
    times.postprocess += r.times.postprocess;
    times.decision += r.times.decision;
    times.device_to_host += r.times.device_to_host;
    return true;
  }

 private:
  struct Entry {
    std::unique_ptr<trt::DevicePost> post;  // declared first: outlives the pipeline that calls it
    std::unique_ptr<trt::TrtPipeline> pipeline;
    uint64_t used = 0;
  };

  // The pipeline for images of h x w x c, made on first use; at most kSizes are kept (least
  // recently used dropped), each holding max_batch images and maps of its size.
  Entry& entry(int64_t h, int64_t w, int64_t c) {
    static constexpr size_t kSizes = 4;
    const auto key = std::make_tuple(h, w, c);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      if (entries_.size() >= kSizes) {
        auto oldest = entries_.begin();
        for (auto j = entries_.begin(); j != entries_.end(); ++j)
          if (j->second.used < oldest->second.used) oldest = j;
        entries_.erase(oldest);
      }
      trt::TrtEngine& first = *engines_.front();
      Entry e;
      e.post = trt::make_device_post(bundle_, arrays_, engines_, first.max_batch(), h, w);
      trt::TrtPipelineSpec spec = spec_;
      spec.image_h = h;
      spec.image_w = w;
      spec.image_c = c;
      spec.map_h = h;
      spec.map_w = w;
      e.pipeline = std::make_unique<trt::TrtPipeline>(first, spec, e.post->callable());
      it = entries_.emplace(key, std::move(e)).first;
    }
    it->second.used = ++clock_;
    return it->second;
  }

  const Bundle& bundle_;
  std::vector<trt::TrtEngine*> engines_;
  trt::TrtPipelineSpec spec_;
  std::shared_ptr<const trt::DeviceArrays> arrays_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Entry> entries_;
  uint64_t clock_ = 0;
  std::vector<const uint8_t*> pointers_;
  std::vector<float> normalized_;
  std::vector<uint8_t> verdicts_;
};

}  // namespace

std::unique_ptr<DeviceCycle> make_device_cycle(const Bundle& bundle, const RuntimeOptions& options,
                                               const std::vector<std::unique_ptr<Backend>>& backends,
                                               int64_t max_batch) {
  std::vector<trt::TrtEngine*> engines;
  for (const auto& b : backends) {
    auto* t = dynamic_cast<trt::TrtBackend*>(b.get());
    if (!t) return nullptr;  // some network on another backend: host path
    engines.push_back(&t->engine());
  }
  if (engines.empty()) return nullptr;
  // The first network takes the preprocessed image as its only input.
  const trt::TrtTensor* input = nullptr;
  int inputs = 0;
  for (const trt::TrtTensor& t : engines.front()->tensors())
    if (t.is_input) input = &t, ++inputs;
  const InputSpec& in = bundle.manifest.input;
  if (inputs != 1 || input->item_shape != std::vector<int64_t>{in.channels, in.height, in.width}) return nullptr;
  try {
    return std::make_unique<TrtDeviceCycle>(bundle, options, std::move(engines), *input, max_batch);
  } catch (const trt::DevicePathUnsupported& e) {
    std::fprintf(stderr, "[edge_sdk] TensorRT backend: host post-processing for this bundle (%s)\n", e.what());
    return nullptr;
  } catch (const trt::TrtError& e) {
    throw BackendError(bundle.path + ": TensorRT device pipeline: " + e.what());
  }
}

}  // namespace edge

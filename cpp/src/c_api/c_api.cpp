// The C entry points over the runtime: argument checks, handle lookup, and the translation of
// C++ exceptions into status codes (status.hpp). The work itself is the Inspector's.
#include "edge_sdk/c_api.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "bundle_cache.hpp"
#include "edge_sdk/common.hpp"
#include "edge_sdk/runtime/backend.hpp"
#include "edge_sdk/thread_pool.hpp"
#include "abi_structs.hpp"
#include "handles.hpp"
#include "inspector.hpp"
#include "run_cycle.hpp"
#include "status.hpp"

using edge::capi::abi_min_size;
using edge::capi::check_struct;
using edge::capi::guarded;
using edge::capi::Inspector;
using edge::capi::Registry;
using edge::capi::StatusError;
using edge::capi::write_struct;

namespace {

void check_out(const void* p, const char* what) {
  if (!p) throw StatusError(EDGE_E_INVALID_ARGUMENT, std::string(what) + ": null pointer");
}

edge_status copy_string(const std::string& s, char* buffer, size_t capacity, size_t* length) {
  if (length) *length = s.size();
  if (!buffer && capacity > 0) throw StatusError(EDGE_E_INVALID_ARGUMENT, "buffer: null pointer with capacity " + std::to_string(capacity));
  if (capacity <= s.size()) {
    if (capacity > 0 && buffer) buffer[0] = '\0';
    throw StatusError(EDGE_E_BUFFER_TOO_SMALL, "buffer: capacity " + std::to_string(capacity) + " bytes, " +
                                                  std::to_string(s.size() + 1) + " needed (length + NUL)");
  }
  std::memcpy(buffer, s.data(), s.size());
  buffer[s.size()] = '\0';
  return EDGE_OK;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

const char* or_default(const char* s, const char* d) { return s && *s ? s : d; }

}  // namespace

extern "C" {

EDGE_API edge_status edge_open(const char* bundle_path, const edge_open_options* options, edge_runtime** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    check_out(out, "out");
    if (!bundle_path || !*bundle_path) throw StatusError(EDGE_E_INVALID_ARGUMENT, "bundle_path: null or empty");
    edge_open_options o;
    edge_open_options_init(&o);
    if (options) {
      check_struct(options, "options");
      const uint32_t size = o.struct_size;
      std::memcpy(&o, options, std::min<size_t>(options->struct_size, sizeof o));  // fields it has; defaults after
      o.struct_size = size;
    }
    edge::capi::InspectorOptions io;
    edge::RuntimeOptions& ro = io.runtime;
    ro.device = or_default(o.device, "cpu");
    edge::parse_device(ro.device, "options->device");
    ro.backend = or_default(o.backend, "onnxruntime");
    {
      const auto have = edge::available_backends();
      bool found = false;
      std::string list;
      for (const auto& b : have) {
        found |= b == ro.backend;
        list += (list.empty() ? "" : ", ") + b;
      }
      found |= ro.backend == "auto" && !have.empty();  // TensorRT where an engine matches, else a CPU backend
      if (!found)
        throw StatusError(EDGE_E_UNSUPPORTED, "options->backend: \"" + ro.backend + "\" is not available in this build (available: " +
                                                  (list.empty() ? std::string("none: the ONNX Runtime headers were not found at build time") : list) + ")");
    }
    ro.precision = or_default(o.precision, "fp32");
    ro.onnxruntime_library = or_default(o.onnxruntime_library, "");
    ro.openvino_library = or_default(o.openvino_library, "");
    ro.openvino_device = or_default(o.openvino_device, "");
    if (o.threads < 0 || o.threads > edge::max_threads())
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->threads: expected 0.." + std::to_string(edge::max_threads()) +
                                                     " (0 = default; at most 4x the hardware threads, and 256), got " +
                                                     std::to_string(o.threads));
    ro.threads = o.threads;
    if (o.contexts < 0 || o.contexts > 256)
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->contexts: expected 0..256 (0 = 1), got " + std::to_string(o.contexts));
    io.contexts = o.contexts == 0 ? 1 : o.contexts;
    if (o.max_batch < 0 || o.max_batch > 4096)
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->max_batch: expected 0..4096 (0 = 1), got " + std::to_string(o.max_batch));
    if (o.heatmaps != 0 && o.heatmaps != 1)
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->heatmaps: expected 0 or 1, got " + std::to_string(o.heatmaps));
    ro.heatmaps = o.heatmaps == 1;
    if (!std::isfinite(o.deadline_ms) || o.deadline_ms < 0)
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->deadline_ms: expected a finite number >= 0 (0 = none)");
    io.deadline_ms = o.deadline_ms;
    if (!(o.review_band < 0.5) || std::isnan(o.review_band))
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->review_band: expected < 0.5 (a half-width in normalized units; < 0 = the bundle's)");
    ro.review_band = o.review_band;
    edge::LoadOptions load;
    if (o.trusted_keys) {
      std::string keys = o.trusted_keys;
      for (size_t start = 0; start <= keys.size();) {
        const size_t end = std::min(keys.find(':', start), keys.size());
        if (end > start) load.trusted_keys.push_back(keys.substr(start, end - start));
        start = end + 1;
      }
      if (load.trusted_keys.empty())
        throw StatusError(EDGE_E_INVALID_ARGUMENT, "options->trusted_keys: empty; NULL means the environment's keys only");
    }
    ro.trusted_keys = load.trusted_keys;

    auto bundle = edge::capi::load_shared_bundle(bundle_path, load);
    const int64_t units = std::max<int64_t>(1, static_cast<int64_t>(bundle->manifest.regions.size()));
    io.chunk_images = o.max_batch == 0 ? 1 : o.max_batch;
    ro.max_batch = io.chunk_images * units;
    auto inspector = std::make_unique<Inspector>(std::move(bundle), io);
    *out = Registry::instance().add(std::move(inspector));
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_close(edge_runtime* rt) {
  return guarded([&] {
    if (!rt) return EDGE_OK;
    Registry::instance().close(rt);
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_input_spec_get(const edge_runtime* rt, edge_input_spec* out) {
  return guarded([&] {
    check_struct(out, "out");
    Registry::Use use(Registry::instance(), rt);
    const edge::InputSpec& in = use->runtime().manifest().input;
    edge_input_spec s;
    edge_input_spec_init(&s);
    s.height = static_cast<int32_t>(in.height);
    s.width = static_cast<int32_t>(in.width);
    s.channels = static_cast<int32_t>(in.channels);
    s.accepts_uint8 = in.accepts("uint8");
    s.accepts_float32 = in.accepts("float32");
    s.resize_on_mismatch = in.on_size_mismatch == "resize";
    s.scale = static_cast<float>(in.scale);
    for (size_t c = 0; c < 3; ++c) {
      s.mean[c] = c < in.mean.size() ? in.mean[c] : 0.0f;
      s.std[c] = c < in.std.size() ? in.std[c] : 0.0f;
    }
    s.value_min = in.value_min;
    s.value_max = in.value_max;
    s.acquisition_frames = static_cast<int32_t>(in.acquisition_frames);
    write_struct(out, s);
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_output_spec_get(const edge_runtime* rt, edge_output_spec* out) {
  return guarded([&] {
    check_struct(out, "out");
    Registry::Use use(Registry::instance(), rt);
    const edge::Manifest& m = use->runtime().manifest();
    edge_output_spec s;
    edge_output_spec_init(&s);
    s.region_count = static_cast<int32_t>(m.regions.size());
    s.group_count = static_cast<int32_t>(edge::region_groups(m.regions).names.size());
    s.frame_width = static_cast<int32_t>(m.frame_width);
    s.frame_height = static_cast<int32_t>(m.frame_height);
    s.threshold = m.calibration.threshold;
    s.review_band = use->options().runtime.review_band >= 0 ? use->options().runtime.review_band : m.decision.review_band;
    s.contexts = use->options().contexts;
    s.max_batch = static_cast<int32_t>(use->options().chunk_images);
    s.heatmaps = use->options().runtime.heatmaps ? 1 : 0;
    s.deadline_ms = use->options().deadline_ms;
    s.tile_merge = static_cast<int32_t>(m.tiling.merge);
    s.tile_height = static_cast<int32_t>(m.tiling.tile_h);
    s.tile_width = static_cast<int32_t>(m.tiling.tile_w);
    s.tile_stride_y = static_cast<int32_t>(m.tiling.stride_y);
    s.tile_stride_x = static_cast<int32_t>(m.tiling.stride_x);
    write_struct(out, s);
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_region_spec_get(const edge_runtime* rt, int32_t index, edge_region_spec* out) {
  return guarded([&] {
    check_struct(out, "out");
    Registry::Use use(Registry::instance(), rt);
    const auto& regions = use->runtime().manifest().regions;
    if (index < 0 || static_cast<size_t>(index) >= regions.size())
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "index: " + std::to_string(index) + " outside 0.." +
                                                     std::to_string(static_cast<int64_t>(regions.size()) - 1) + " (region_count " +
                                                     std::to_string(regions.size()) + ")");
    const edge::RegionSpec& r = regions[static_cast<size_t>(index)];
    out->x = static_cast<int32_t>(r.x);
    out->y = static_cast<int32_t>(r.y);
    out->width = static_cast<int32_t>(r.width);
    out->height = static_cast<int32_t>(r.height);
    out->threshold = r.threshold;
    if (out->struct_size >= offsetof(edge_region_spec, group) + sizeof(int32_t))
      out->group = edge::region_groups(regions).of_region[static_cast<size_t>(index)];
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_group_name(const edge_runtime* rt, int32_t index, char* buffer, size_t capacity, size_t* length) {
  return guarded([&] {
    Registry::Use use(Registry::instance(), rt);
    const auto names = edge::region_groups(use->runtime().manifest().regions).names;
    if (index < 0 || static_cast<size_t>(index) >= names.size())
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "index: " + std::to_string(index) + " outside the " +
                                                     std::to_string(names.size()) + " group(s)");
    return copy_string(names[static_cast<size_t>(index)], buffer, capacity, length);
  });
}

EDGE_API edge_status edge_region_name(const edge_runtime* rt, int32_t index, char* buffer, size_t capacity, size_t* length) {
  return guarded([&] {
    Registry::Use use(Registry::instance(), rt);
    const auto& regions = use->runtime().manifest().regions;
    if (index < 0 || static_cast<size_t>(index) >= regions.size())
      throw StatusError(EDGE_E_INVALID_ARGUMENT, "index: " + std::to_string(index) + " outside the " +
                                                     std::to_string(regions.size()) + " region(s)");
    return copy_string(regions[static_cast<size_t>(index)].name, buffer, capacity, length);
  });
}

EDGE_API edge_status edge_describe(const edge_runtime* rt, char* buffer, size_t capacity, size_t* length) {
  return guarded([&] {
    Registry::Use use(Registry::instance(), rt);
    const edge::Runtime& r = use->runtime();
    const edge::Manifest& m = r.manifest();
    const auto& o = use->options();
    std::string s = "{\"sdk_version\": " + json_string(edge_sdk_version()) +
                    ", \"abi_version\": \"" + std::to_string(EDGE_ABI_VERSION_MAJOR) + "." + std::to_string(EDGE_ABI_VERSION_MINOR) +
                    "\", \"bundle\": " + json_string(use->bundle_path()) + ", \"model_type\": " + json_string(m.model_type) +
                    ", \"model_name\": " + json_string(m.model_name) + ", \"bundle_sdk_version\": " + json_string(m.sdk_version) +
                    ", \"backend\": " + json_string(r.backend_description()) + ", \"device\": " + json_string(o.runtime.device) +
                    ", \"precision\": " + json_string(o.runtime.precision) + ", \"contexts\": " + std::to_string(o.contexts) +
                    ", \"max_batch\": " + std::to_string(o.chunk_images) + "}";
    return copy_string(s, buffer, capacity, length);
  });
}

EDGE_API edge_status edge_heatmap_floats(const edge_runtime* rt, const edge_image* images, size_t count, size_t* floats) {
  return guarded([&] {
    check_out(floats, "floats");
    *floats = 0;
    Registry::Use use(Registry::instance(), rt);
    if (count > 0 && !images) throw StatusError(EDGE_E_INVALID_ARGUMENT, "images: null pointer for " + std::to_string(count) + " image(s)");
    *floats = Inspector::heatmap_floats(images, count);
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_run(edge_runtime* rt, const edge_image* images, size_t count, double deadline_ms,
                              edge_batch_outputs* outputs) {
  return edge::capi::run_cycle(rt, images, count, nullptr, deadline_ms, outputs, nullptr);
}

EDGE_API edge_status edge_run_with(edge_runtime* rt, const edge_image* images, size_t count,
                                   const edge_run_options* options, edge_batch_outputs* outputs) {
  return edge::capi::run_cycle(rt, images, count, options, -1.0, outputs, nullptr);
}

namespace {
std::string product_id(const char* product) {
  if (!product) throw StatusError(EDGE_E_INVALID_ARGUMENT, "product: null pointer");
  const size_t n = strnlen(product, edge::kMaxProductIdBytes + 1);
  if (n == 0 || n > edge::kMaxProductIdBytes)
    throw StatusError(EDGE_E_INVALID_ARGUMENT,
                      "product: expected an id of 1 to " + std::to_string(edge::kMaxProductIdBytes) + " bytes");
  return std::string(product, n);
}

void write_run_status(edge_run_status* out, const edge::RunStatus& s) {
  edge_run_status v;
  edge_run_status_init(&v);
  v.decided = s.decided ? 1 : 0;
  v.verdict = static_cast<int32_t>(s.verdict);
  v.rejects = s.rejects;
  v.accepts = s.accepts;
  v.reviews = s.reviews;
  v.missing = s.missing;
  write_struct(out, v);
}
}  // namespace

EDGE_API edge_status edge_run_vote(edge_runtime* rt, const char* product, int32_t acquisition, int32_t verdict,
                                   edge_run_status* out) {
  return guarded([&] {
    check_struct(out, "out");
    const std::string id = product_id(product);
    Registry::Use use(Registry::instance(), rt);
    write_run_status(out, use->run_vote().add(id, acquisition, static_cast<edge::Verdict>(verdict)));
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_run_vote_close(edge_runtime* rt, const char* product, edge_run_status* out) {
  return guarded([&] {
    check_struct(out, "out");
    const std::string id = product_id(product);
    Registry::Use use(Registry::instance(), rt);
    write_run_status(out, use->run_vote().close(id));
    return EDGE_OK;
  });
}

EDGE_API edge_status edge_run_vote_rule(const edge_runtime* rt, int32_t* k, int32_t* n) {
  return guarded([&] {
    if (!k || !n) throw StatusError(EDGE_E_INVALID_ARGUMENT, std::string(!k ? "k" : "n") + ": null pointer");
    Registry::Use use(Registry::instance(), rt);
    const auto& o = use->run_vote().options();
    *k = o.k;
    *n = o.n;
    return EDGE_OK;
  });
}

}  // extern "C"

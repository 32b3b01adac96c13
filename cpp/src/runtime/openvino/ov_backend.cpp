// Network backend on OpenVINO (its C API, loaded with dlopen): the bundle's ONNX bytes read by
// OpenVINO's ONNX frontend, compiled for a device (CPU here; GPU / NPU where OpenVINO finds them),
// one infer request whose input and output tensors wrap the runtime's preallocated host buffers,
// made once per batch size. Backends of the same network content and options share one compiled
// model (the weights), each with its own infer request: a synchronous infer runs in its caller's
// thread, so the C ABI's contexts still run in parallel (measured: two threads on two requests of
// one compiled model took the time of one).
#include "ov_backend.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <mutex>

#include "edge_sdk/runtime/errors.hpp"
#include "ov_library.hpp"

namespace edge {
namespace {

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// "GPU" names the first of "GPU.0", "GPU.1"; AUTO lets OpenVINO choose among those it found.
bool device_available(const std::string& device, const std::vector<std::string>& have) {
  if (device == "AUTO") return true;
  for (const auto& d : have)
    if (d == device || d.substr(0, d.find('.')) == device) return true;
  return false;
}

struct Compiled {
  const ov::Api* api = nullptr;
  ov::CompiledModel* model = nullptr;
  std::string desc;  // what the device settled on: ", f32, threads 2"
  ~Compiled() {
    if (model) api->compiled_model_free(model);
  }
};

// Compiled models by (network file sha256, device, threads): a weak cache, so a compiled model
// lives as long as a backend uses it. Keyed by content, never by address.
std::shared_ptr<Compiled> shared_compiled(const std::string& key, const std::function<std::shared_ptr<Compiled>()>& create) {
  static std::mutex mutex;
  static auto* cache = new std::map<std::string, std::weak_ptr<Compiled>>();  // never destroyed
  std::lock_guard<std::mutex> lock(mutex);  // creation under the lock: two opens do not compile twice
  for (auto it = cache->begin(); it != cache->end();) {
    if (it->second.expired()) it = cache->erase(it);
    else ++it;
  }
  auto& slot = (*cache)[key];
  if (auto c = slot.lock()) return c;
  auto c = create();
  slot = c;
  return c;
}

class OvBackend final : public Backend {
 public:
  OvBackend(const Bundle& bundle, const NetworkSpec& net, const BackendOptions& opt)
      : net_(net), source_(bundle.path + "/" + net.file) {
    const OpenVinoLibraryInfo& lib = load_openvino(opt.openvino_library);
    api_ = &ov_api();
    device_ = upper(opt.openvino_device.empty() ? "CPU" : opt.openvino_device);
    lib_desc_ = "openvino " + lib.version.substr(0, lib.version.find('-')) + " (" + lib.path + ")";
    if (!device_available(device_, lib.devices)) {
      std::string have;
      for (const auto& d : lib.devices) have += (have.empty() ? "" : ", ") + d;
      throw BackendError("openvino_device \"" + opt.openvino_device + "\": " + lib_desc_ +
                         " has no such device (available: " + (have.empty() ? "none" : have) +
                         "; GPU and NPU need their drivers installed)");
    }
    auto file = bundle.manifest.files.find(net.file);
    // The bf16 variant is the fp32 graph (same sha256) compiled with another hint: the hint is in the key.
    const std::string hint = net.precision == "bf16" ? "bf16" : "f32";
    const std::string key = (file != bundle.manifest.files.end() ? file->second.sha256 : source_) + "|" + device_ +
                            "|" + std::to_string(opt.threads) + "|" + hint;
    compiled_ = shared_compiled(key, [&] { return compile(bundle.contents.at(net.file), opt.threads, hint); });
    try {
      check_io();
      for (const auto& t : net_.inputs) names_.push_back(t.name);
      for (const auto& t : net_.outputs) names_.push_back(t.name);
      check(api_->compiled_model_create_infer_request(compiled_->model, &request_),
            "ov_compiled_model_create_infer_request");
    } catch (...) {
      release();
      throw;
    }
  }

  ~OvBackend() override { release(); }

  std::string description() const override { return lib_desc_ + ", " + device_ + compiled_->desc; }

  // Asks OpenVINO to cancel the request (infer then returns INFER_CANCELLED). The CPU plugin does not
  // stop an infer already running (measured: a cancelled call runs to its end, and the C ABI's next
  // cycle waits for it, where ONNX Runtime stops between graph nodes); the deadline itself is kept
  // all the same, the abandoned call's results being discarded.
  void cancel() noexcept override {
    if (request_) api_->infer_request_cancel(request_);
  }

  void bind(int64_t max_batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs) override {
    if (inputs.size() != net_.inputs.size() || outputs.size() != net_.outputs.size())
      throw ArgumentError("backend bind: buffer count does not match the network's inputs/outputs");
    release_tensors();
    max_batch_ = max_batch;
    inputs_ = inputs;
    outputs_ = outputs;
    tensors_.assign(static_cast<size_t>(max_batch) + 1, {});
    current_ = 0;
  }

  void run(int64_t batch) override {
    if (batch < 1 || batch > max_batch_)
      throw ArgumentError("backend run: batch " + std::to_string(batch) + " outside [1, " + std::to_string(max_batch_) + "]");
    auto& t = tensors_[static_cast<size_t>(batch)];
    if (t.empty()) make_tensors(batch, t);
    if (batch != current_) {
      // The request keeps the tensors it was given: set again only when the batch size changes.
      current_ = 0;
      for (size_t i = 0; i < t.size(); ++i)
        check(api_->infer_request_set_tensor(request_, names_[i].c_str(), t[i]), "ov_infer_request_set_tensor");
      current_ = batch;
    }
    const ov::Status s = api_->infer_request_infer(request_);
    if (s == ov::kInferCancelled) throw BackendError(source_ + ": inference cancelled");
    if (s != ov::kOk) throw BackendError(source_ + ": inference failed: " + ov_error("ov_infer_request_infer", s));
  }

 private:
  void check(ov::Status s, const char* what) const {
    if (s != ov::kOk) throw BackendError(source_ + ": " + ov_error(what, s));
  }

  // Float32 on the CPU (INFERENCE_PRECISION_HINT f32) unless the bundle's gated bf16 variant is asked
  // for: by default OpenVINO computes in bf16 on CPUs that have it (AMX, AVX512-BF16), 1e-3 from the
  // model's scores, outside the runtime's 1e-4 parity. A CPU without bfloat16 arithmetic runs the
  // bf16 hint in f32; description() shows what the device settled on. fp16 / int8 variants carry
  // their precision in the graph.
  // Latency hint: one stream, every thread on the one request (the runtime's batch is one call).
  std::shared_ptr<Compiled> compile(const std::vector<uint8_t>& bytes, int threads, const std::string& hint) {
    ov::Model* model = nullptr;
    check(api_->core_read_model_from_memory_buffer(ov_core(), reinterpret_cast<const char*>(bytes.data()),
                                                   bytes.size(), nullptr, &model),
          "OpenVINO could not read the network (ov_core_read_model_from_memory_buffer)");
    auto c = std::make_shared<Compiled>();
    c->api = api_;
    const std::string nthreads = std::to_string(threads);
    std::vector<std::pair<const char*, const char*>> props{{"PERFORMANCE_HINT", "LATENCY"}};
    if (device_ == "CPU" || device_ == "GPU" || device_.rfind("GPU.", 0) == 0)
      props.emplace_back("INFERENCE_PRECISION_HINT", hint.c_str());
    if (device_ == "CPU" && threads > 0) props.emplace_back("INFERENCE_NUM_THREADS", nthreads.c_str());
    const auto& p = props;
    const char* dev = device_.c_str();
    ov::Status s = ov::kOk;
    switch (p.size()) {  // a variadic C call: one call per property count
      case 1:
        s = api_->core_compile_model(ov_core(), model, dev, 2, &c->model, p[0].first, p[0].second);
        break;
      case 2:
        s = api_->core_compile_model(ov_core(), model, dev, 4, &c->model, p[0].first, p[0].second, p[1].first,
                                     p[1].second);
        break;
      default:
        s = api_->core_compile_model(ov_core(), model, dev, 6, &c->model, p[0].first, p[0].second, p[1].first,
                                     p[1].second, p[2].first, p[2].second);
    }
    const std::string error = s == ov::kOk ? "" : ov_error("ov_core_compile_model", s);
    api_->model_free(model);
    if (s != ov::kOk)
      throw BackendError(source_ + ": OpenVINO could not compile the network for " + device_ + ": " + error);
    // What the device settled on, for description().
    const std::pair<const char*, const char*> shown[] = {{"INFERENCE_PRECISION_HINT", ""},
                                                         {"INFERENCE_NUM_THREADS", "threads "}};
    for (const auto& [key, label] : shown) {
      char* v = nullptr;
      if (api_->compiled_model_get_property(c->model, key, &v) == ov::kOk && v) {
        c->desc += std::string(", ") + label + v;
        api_->free(v);
      }
    }
    return c;
  }

  // The compiled model must agree with the manifest (the validator checked the file; this checks
  // what OpenVINO built from it). Ports are found by the manifest's names: OpenVINO gives a tensor
  // every name it had before its graph passes (fp16 variants: also the Cast's), any of them works.
  void check_io() {
    auto side = [&](const char* what, const std::vector<TensorSpec>& decl, auto count_fn, auto port_fn) {
      size_t count = 0;
      check(count_fn(compiled_->model, &count), "port count");
      if (count != decl.size())
        throw BundleError(source_ + ": OpenVINO sees " + std::to_string(count) + " " + what + "(s), manifest declares " +
                          std::to_string(decl.size()));
      for (const auto& d : decl) {
        ov::ConstPort* port = nullptr;
        if (port_fn(compiled_->model, d.name.c_str(), &port) != ov::kOk)
          throw BundleError(source_ + ": OpenVINO has no " + what + " \"" + d.name + "\" (declared in the manifest)");
        std::vector<int64_t> shape;
        ov::ElementType type = 0;
        size_t elem_bytes = 0;
        try {
          describe(port, d.name, &shape, &type, &elem_bytes);
        } catch (...) {
          api_->output_const_port_free(port);
          throw;
        }
        api_->output_const_port_free(port);
        bool ok = shape.size() == d.shape.size();
        for (size_t k = 1; ok && k < shape.size(); ++k) ok = shape[k] == d.shape[k];
        if (!ok)
          throw BundleError(source_ + ": " + what + " \"" + d.name + "\" has shape " + dims_str(shape) +
                            " in OpenVINO, manifest says " + dims_str(d.shape));
        if (elem_bytes != sizeof(float))
          throw BundleError(source_ + ": " + what + " \"" + d.name + "\" has " + std::to_string(elem_bytes) +
                            "-byte elements in OpenVINO, manifest says float32");
        elem_type_ = type;
      }
    };
    side("input", net_.inputs, api_->compiled_model_inputs_size, api_->compiled_model_input_by_name);
    side("output", net_.outputs, api_->compiled_model_outputs_size, api_->compiled_model_output_by_name);
  }

  // Shape (-1 for a dynamic dimension) and element size of a port. The element size comes from a
  // one-element tensor of the port's type (the type's number is the library's business).
  void describe(ov::ConstPort* port, const std::string& name, std::vector<int64_t>* shape, ov::ElementType* type,
                size_t* elem_bytes) {
    ov::PartialShape ps{};
    check(api_->port_get_partial_shape(port, &ps), "ov_port_get_partial_shape");
    if (ps.rank.min != ps.rank.max) {
      api_->partial_shape_free(&ps);
      throw BundleError(source_ + ": \"" + name + "\" has a dynamic rank in OpenVINO");
    }
    for (int64_t k = 0; k < ps.rank.max; ++k)
      shape->push_back(ps.dims[k].min == ps.dims[k].max ? ps.dims[k].max : -1);
    api_->partial_shape_free(&ps);
    check(api_->port_get_element_type(port, type), "ov_port_get_element_type");
    float probe = 0.0f;
    const int64_t one = 1;
    ov::Tensor* t = make_tensor(*type, &one, 1, &probe);
    const ov::Status s = api_->tensor_get_byte_size(t, elem_bytes);
    api_->tensor_free(t);
    check(s, "ov_tensor_get_byte_size");
  }

  ov::Tensor* make_tensor(ov::ElementType type, const int64_t* dims, int64_t rank, void* data) {
    ov::Shape shape{0, nullptr};
    check(api_->shape_create(rank, dims, &shape), "ov_shape_create");
    ov::Tensor* t = nullptr;
    const ov::Status s = api_->tensor_create_from_host_ptr(type, shape, data, &t);
    api_->shape_free(&shape);
    check(s, "ov_tensor_create_from_host_ptr");
    return t;
  }

  // All of a batch size's tensors, or none (a failure leaves the slot empty, to be made again).
  void make_tensors(int64_t batch, std::vector<ov::Tensor*>& t) {
    std::vector<ov::Tensor*> made;
    auto wrap = [&](const TensorSpec& spec, void* ptr) {
      std::vector<int64_t> dims = spec.shape;
      dims[0] = batch;
      made.push_back(make_tensor(elem_type_, dims.data(), static_cast<int64_t>(dims.size()), ptr));
    };
    try {
      for (size_t i = 0; i < net_.inputs.size(); ++i) wrap(net_.inputs[i], const_cast<float*>(inputs_[i]));
      for (size_t i = 0; i < net_.outputs.size(); ++i) wrap(net_.outputs[i], outputs_[i]);
    } catch (...) {
      for (ov::Tensor* m : made) api_->tensor_free(m);
      throw;
    }
    t = std::move(made);
  }

  void release_tensors() {
    for (auto& v : tensors_)
      for (ov::Tensor* t : v) api_->tensor_free(t);
    tensors_.clear();
  }

  void release() noexcept {
    release_tensors();
    if (request_) api_->infer_request_free(request_);
    request_ = nullptr;
    compiled_.reset();
  }

  const ov::Api* api_ = nullptr;
  NetworkSpec net_;
  std::string source_, lib_desc_, device_;
  std::shared_ptr<Compiled> compiled_;
  ov::InferRequest* request_ = nullptr;
  ov::ElementType elem_type_ = 0;  // the library's number for float32
  std::vector<std::string> names_;  // inputs then outputs, the manifest's order (as tensors_)
  int64_t max_batch_ = 0, current_ = 0;                    // current_: batch whose tensors the request holds
  std::vector<const float*> inputs_;
  std::vector<float*> outputs_;
  std::vector<std::vector<ov::Tensor*>> tensors_;  // [batch] -> inputs then outputs
};

}  // namespace

std::unique_ptr<Backend> make_openvino_backend(const Bundle& bundle, const NetworkSpec& network,
                                               const BackendOptions& options) {
  return std::make_unique<OvBackend>(bundle, network, options);
}

}  // namespace edge

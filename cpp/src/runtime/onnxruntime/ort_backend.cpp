// Network backend on ONNX Runtime: one session per bundle network, inputs and outputs bound to
// the runtime's preallocated host buffers, OrtValue wrappers cached per batch size. Backends of the
// same network file content and session options share one session (ONNX Runtime's Run is
// thread-safe): the C ABI's contexts and runtimes opened twice keep one copy of the weights.
#include "ort_backend.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/ort_library.hpp"
#include "ort_api.hpp"

namespace edge {
namespace {

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

// Sessions by (network file sha256, provider, device, threads, engine cache): a weak cache, so a
// session lives as long as a backend uses it. Keyed by content, never by address.
std::shared_ptr<Ort::Session> shared_session(const std::string& key, const std::function<Ort::Session*()>& create) {
  static std::mutex mutex;
  static auto* cache = new std::map<std::string, std::weak_ptr<Ort::Session>>();  // never destroyed
  std::lock_guard<std::mutex> lock(mutex);  // creation under the lock: two opens do not build it twice
  for (auto it = cache->begin(); it != cache->end();) {
    if (it->second.expired()) it = cache->erase(it);
    else ++it;
  }
  auto& slot = (*cache)[key];
  if (auto s = slot.lock()) return s;
  std::shared_ptr<Ort::Session> s(create());
  slot = s;
  return s;
}

bool has_provider(const OrtLibraryInfo& lib, const std::string& name) {
  return std::find(lib.providers.begin(), lib.providers.end(), name) != lib.providers.end();
}

std::string provider_list(const OrtLibraryInfo& lib) {
  std::string s;
  for (const auto& p : lib.providers) s += (s.empty() ? "" : ", ") + p;
  return s;
}

class OrtBackend final : public Backend {
 public:
  OrtBackend(const Bundle& bundle, const NetworkSpec& net, const BackendOptions& opt)
      : net_(net), source_(bundle.path + "/" + net.file) {
    const OrtLibraryInfo& lib = load_onnxruntime(opt.library);
    lib_desc_ = "onnxruntime " + lib.version + " (" + lib.path + ")";
    try {
      Ort::SessionOptions so;
      so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
      if (opt.threads > 0) so.SetIntraOpNumThreads(opt.threads);
      so.SetInterOpNumThreads(1);
      // Workers spin between the operators of a Run (a sleeping worker takes tens of microseconds
      // to wake, once per operator: a quarter of a small network's time) and stop the moment Run
      // returns, so they do not steal the cores from the post-processing kernels that follow.
      so.AddConfigEntry("session.intra_op.allow_spinning", "1");
      so.AddConfigEntry("session.force_spinning_stop", "1");
      if (opt.provider == "cpu") {
        provider_ = "CPUExecutionProvider";
        // int8 variants: the Q/DQ pairs are evaluated in float instead of fused into ONNX
        // Runtime's integer kernels. Those kernels compute differently per CPU (u8s8 pair sums
        // saturate without VNNI: 0.15-0.41 relative error on AVX2), so scores, and the accuracy
        // gate that admits the variant, would depend on the machine; in float the result is the
        // target's (TensorRT's int8 with int32 accumulation) up to rounding, on every CPU.
        if (net.precision == "int8") so.AddConfigEntry("session.disable_quant_qdq", "1");
      } else if (opt.provider == "cuda") {
        provider_ = "CUDAExecutionProvider";
        if (!has_provider(lib, provider_))
          throw BackendError("device cuda:" + std::to_string(opt.device_index) + ": " + lib_desc_ +
                             " has no CUDAExecutionProvider (available: " + provider_list(lib) +
                             "); use an onnxruntime build with CUDA (pip install onnxruntime-gpu)");
        Ort::CUDAProviderOptions cuda;
        cuda.Update({{"device_id", std::to_string(opt.device_index)}});
        so.AppendExecutionProvider_CUDA_V2(*cuda);
      } else if (opt.provider == "tensorrt") {
        provider_ = "TensorrtExecutionProvider";
        if (!has_provider(lib, provider_))
          throw BackendError("provider tensorrt: " + lib_desc_ + " has no TensorrtExecutionProvider (available: " +
                             provider_list(lib) + ")");
        Ort::TensorRTProviderOptions trt;
        std::unordered_map<std::string, std::string> o{{"device_id", std::to_string(opt.device_index)}};
        if (!opt.trt_cache_dir.empty()) {
          o["trt_engine_cache_enable"] = "1";
          o["trt_engine_cache_path"] = opt.trt_cache_dir;
        }
        trt.Update(o);
        so.AppendExecutionProvider_TensorRT_V2(*trt);
        if (has_provider(lib, "CUDAExecutionProvider")) {  // fallback for nodes TensorRT rejects
          Ort::CUDAProviderOptions cuda;
          cuda.Update({{"device_id", std::to_string(opt.device_index)}});
          so.AppendExecutionProvider_CUDA_V2(*cuda);
        }
      } else {
        throw ArgumentError("provider: expected \"cpu\", \"cuda\" or \"tensorrt\", got \"" + opt.provider + "\"");
      }
      const auto& bytes = bundle.contents.at(net.file);
      auto file = bundle.manifest.files.find(net.file);
      const std::string key = (file != bundle.manifest.files.end() ? file->second.sha256 : bundle.path + "/" + net.file) +
                              "|" + opt.provider + "|" + std::to_string(opt.device_index) + "|" +
                              std::to_string(opt.threads) + "|" + opt.trt_cache_dir;
      session_ = shared_session(key, [&] { return new Ort::Session(ort_env(), bytes.data(), bytes.size(), so); });
    } catch (const Ort::Exception& e) {
      throw BackendError(source_ + ": ONNX Runtime could not create a session: " + e.what());
    }
    check_io();
    for (const auto& t : net_.inputs) in_names_.push_back(t.name.c_str());
    for (const auto& t : net_.outputs) out_names_.push_back(t.name.c_str());
    run_options_ = std::make_unique<Ort::RunOptions>();
    mem_ = std::make_unique<Ort::MemoryInfo>(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault));
  }

  std::string description() const override { return lib_desc_ + ", " + provider_; }

  // ONNX Runtime checks the flag between graph nodes: the run ends within one node's time.
  void cancel() noexcept override {
    try {
      run_options_->SetTerminate();
    } catch (...) {
    }
  }

  void bind(int64_t max_batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs) override {
    if (inputs.size() != net_.inputs.size() || outputs.size() != net_.outputs.size())
      throw ArgumentError("backend bind: buffer count does not match the network's inputs/outputs");
    max_batch_ = max_batch;
    inputs_ = inputs;
    outputs_ = outputs;
    values_.clear();
    values_.resize(static_cast<size_t>(max_batch) + 1);
  }

  void run(int64_t batch) override {
    if (batch < 1 || batch > max_batch_)
      throw ArgumentError("backend run: batch " + std::to_string(batch) + " outside [1, " + std::to_string(max_batch_) + "]");
    auto& vals = values_[static_cast<size_t>(batch)];
    if (vals.empty()) make_values(batch, vals);
    try {
      run_options_->UnsetTerminate();  // a cancel() of an earlier run does not carry over
      session_->Run(*run_options_, in_names_.data(), vals.data(), in_names_.size(), out_names_.data(),
                    vals.data() + in_names_.size(), out_names_.size());
    } catch (const Ort::Exception& e) {
      throw BackendError(source_ + ": inference failed: " + e.what());
    }
  }

 private:
  // The session must agree with the manifest (the validator checked the file; this checks what
  // ONNX Runtime actually built from it).
  void check_io() {
    auto compare = [&](const char* what, size_t count, auto name_of, auto shape_of, const std::vector<TensorSpec>& decl) {
      if (count != decl.size())
        throw BundleError(source_ + ": ONNX Runtime sees " + std::to_string(count) + " " + what + "(s), manifest declares " +
                          std::to_string(decl.size()));
      for (size_t i = 0; i < count; ++i) {
        const std::string name = name_of(i);
        const TensorSpec* d = nullptr;
        for (const auto& t : decl)
          if (t.name == name) d = &t;
        if (!d) throw BundleError(source_ + ": ONNX Runtime " + what + " \"" + name + "\" is not declared in the manifest");
        const std::vector<int64_t> shape = shape_of(i);
        bool ok = shape.size() == d->shape.size();
        for (size_t k = 1; ok && k < shape.size(); ++k) ok = shape[k] == d->shape[k];
        if (!ok)
          throw BundleError(source_ + ": " + what + " \"" + name + "\" has shape " + dims_str(shape) +
                            " in ONNX Runtime, manifest says " + dims_str(d->shape));
      }
    };
    Ort::AllocatorWithDefaultOptions alloc;
    compare("input", session_->GetInputCount(),
            [&](size_t i) { return std::string(session_->GetInputNameAllocated(i, alloc).get()); },
            [&](size_t i) { return session_->GetInputTypeInfo(i).GetTensorTypeAndShapeInfo().GetShape(); }, net_.inputs);
    compare("output", session_->GetOutputCount(),
            [&](size_t i) { return std::string(session_->GetOutputNameAllocated(i, alloc).get()); },
            [&](size_t i) { return session_->GetOutputTypeInfo(i).GetTensorTypeAndShapeInfo().GetShape(); }, net_.outputs);
  }

  void make_values(int64_t batch, std::vector<Ort::Value>& vals) {
    auto wrap = [&](const TensorSpec& t, float* ptr) {
      std::vector<int64_t> shape = t.shape;
      shape[0] = batch;
      size_t count = 1;
      for (int64_t d : shape) count *= static_cast<size_t>(d);
      vals.push_back(Ort::Value::CreateTensor<float>(*mem_, ptr, count, shape.data(), shape.size()));
    };
    for (size_t i = 0; i < net_.inputs.size(); ++i) wrap(net_.inputs[i], const_cast<float*>(inputs_[i]));
    for (size_t i = 0; i < net_.outputs.size(); ++i) wrap(net_.outputs[i], outputs_[i]);
  }

  NetworkSpec net_;
  std::string source_, lib_desc_, provider_;
  std::shared_ptr<Ort::Session> session_;
  std::unique_ptr<Ort::MemoryInfo> mem_;
  std::unique_ptr<Ort::RunOptions> run_options_;  // created after the library is loaded
  std::vector<const char*> in_names_, out_names_;
  int64_t max_batch_ = 0;
  std::vector<const float*> inputs_;
  std::vector<float*> outputs_;
  std::vector<std::vector<Ort::Value>> values_;  // [batch] -> inputs then outputs
};

}  // namespace

std::unique_ptr<Backend> make_onnxruntime_backend(const Bundle& bundle, const NetworkSpec& network,
                                                  const BackendOptions& options) {
  return std::make_unique<OrtBackend>(bundle, network, options);
}

}  // namespace edge

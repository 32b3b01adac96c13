#include "trt_backend.hpp"

#include <cuda_runtime_api.h>

#include <filesystem>
#include <fstream>

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/sha256.hpp"

namespace fs = std::filesystem;

namespace edge {
namespace trt {
namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw BackendError(path + ": cannot be read");
  f.seekg(0, std::ios::end);
  const std::streamoff n = f.tellg();
  f.seekg(0, std::ios::beg);
  std::vector<uint8_t> data(static_cast<size_t>(n));
  if (n > 0 && !f.read(reinterpret_cast<char*>(data.data()), n)) throw BackendError(path + ": read error");
  return data;
}

std::string dims_text(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

std::string cuda_version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

void require_cuda_device(const BackendOptions& o) {
  if (!o.cuda_device)
    throw ArgumentError("backend: \"tensorrt\" runs on a CUDA device; give device=\"cuda:N\" (got the CPU)");
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || o.device_index < 0 || o.device_index >= count)
    throw BackendError("backend tensorrt: no CUDA device " + std::to_string(o.device_index) + " on this machine (" +
                       (err != cudaSuccess ? std::string(cudaGetErrorString(err))
                                           : std::to_string(count) + " device(s)") + ")");
}

EngineExpectation expectation(const Bundle& b, const NetworkSpec& net, int64_t max_batch) {
  EngineExpectation e;
  auto it = b.manifest.files.find(net.file);
  if (it == b.manifest.files.end())
    throw BundleError(b.path + "/manifest.json: files." + net.file + " missing (network \"" + net.name + "\")");
  e.source_onnx_sha256 = it->second.sha256;
  e.precision = net.precision;
  if (max_batch >= 1) e.max_batch = max_batch;
  e.input_shapes.emplace();
  for (const TensorSpec& t : net.inputs) e.input_shapes->emplace_back(t.name, std::vector<int64_t>(t.shape.begin() + 1, t.shape.end()));
  return e;
}

std::string build_hint(const Bundle& b, const NetworkSpec& net) {
  return "build one on this machine with `edge-sdk build-engine " + b.path + " --precision " + net.precision +
         "` (or open the runtime from Python with rebuild_engines=True)";
}

}  // namespace

EngineMachine this_machine(int device_index) {
  EngineMachine m;
  m.tensorrt_version = TrtEngine::library_version();
  int v = 0;
  if (cudaDriverGetVersion(&v) == cudaSuccess && v > 0) m.cuda_driver_version = cuda_version_text(v);
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device_index) == cudaSuccess) {
    m.gpu_name = std::string(prop.name);
    m.compute_capability = std::make_pair(prop.major, prop.minor);
  }
  return m;
}

std::string engines_folder(const Bundle& bundle, const BackendOptions& options) {
  if (!options.engines_dir.empty()) return options.engines_dir;
  std::error_code ec;
  if (!fs::is_directory(bundle.path, ec))
    throw ArgumentError("engines_dir: " + bundle.path + " is an archived bundle; give the folder of its TensorRT "
                        "engines (engines_dir)");
  return (fs::path(bundle.path) / kEnginesDir).string();
}

SelectedEngine select_engine(const Bundle& bundle, const NetworkSpec& net, const BackendOptions& options,
                             int64_t max_batch) {
  const std::string folder = engines_folder(bundle, options);
  const EngineMachine machine = this_machine(options.device_index);
  const EngineExpectation expected = expectation(bundle, net, max_batch);
  std::string problems;
  for (const std::string& path : engine_candidates(folder, net.name, net.precision)) {
    const std::string name = fs::path(path).filename().string();
    EngineManifest m;
    try {
      m = read_engine_manifest(path);
    } catch (const EngineManifestError& e) {
      problems += "\n  " + name + ": " + e.what();
      continue;
    }
    const EngineCheck check = engine_differences(m, machine, expected);
    if (!check.ok()) {
      for (const auto& d : check.differences) problems += "\n  " + name + ": " + d.field + ": " + d.message;
      continue;
    }
    SelectedEngine s{path, read_bytes(path), std::move(m)};
    if (sha256_hex(s.plan.data(), s.plan.size()) != s.manifest.engine_sha256) {
      problems += "\n  " + name + ": engine_sha256: the file does not match its manifest (corrupt?)";
      continue;
    }
    return s;
  }
  if (problems.empty())
    throw BackendError(folder + ": no " + net.precision + " engine for network \"" + net.name + "\"; " +
                       build_hint(bundle, net));
  throw BackendError(folder + ": no " + net.precision + " engine for network \"" + net.name +
                     "\" matches this machine and bundle:" + problems + "\n" + build_hint(bundle, net));
}

TrtBackend::TrtBackend(const Bundle& bundle, const NetworkSpec& network, const BackendOptions& options)
    : bundle_(bundle), net_(network), options_(options) {
  require_cuda_device(options_);
}

void TrtBackend::bind(int64_t max_batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs) {
  load(max_batch, inputs, outputs);
}

void TrtBackend::bind_device(int64_t max_batch, const std::vector<const float*>& inputs,
                             const std::vector<float*>& outputs) {
  load(max_batch, inputs, outputs);
  try {
    engine_->use_device_buffers(inputs_, outputs_);
  } catch (const TrtError& e) {
    throw BackendError(e.what());
  }
  device_ = true;
}

void TrtBackend::load(int64_t max_batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs) {
  if (inputs.size() != net_.inputs.size() || outputs.size() != net_.outputs.size())
    throw ArgumentError("backend bind: buffer count does not match the network's inputs/outputs");
  SelectedEngine s = select_engine(bundle_, net_, options_, max_batch);
  TrtEngineOptions eo;
  eo.device_index = options_.device_index;
  eo.max_batch = max_batch;
  eo.cuda_graph = options_.cuda_graph;
  try {
    engine_ = std::make_unique<TrtEngine>(s.plan, s.path, eo);
  } catch (const TrtError& e) {
    throw BackendError(e.what());
  }
  // The engine's tensors must be the manifest's, with the same per-item shapes.
  inputs_.clear();
  outputs_.clear();
  for (const TrtTensor& t : engine_->tensors()) {
    const auto& decl = t.is_input ? net_.inputs : net_.outputs;
    size_t k = 0;
    while (k < decl.size() && decl[k].name != t.name) ++k;
    if (k == decl.size())
      throw BundleError(s.path + ": engine " + (t.is_input ? "input" : "output") + " \"" + t.name +
                        "\" is not declared for network \"" + net_.name + "\" in the manifest");
    const std::vector<int64_t> want(decl[k].shape.begin() + 1, decl[k].shape.end());
    if (t.item_shape != want)
      throw BundleError(s.path + ": tensor \"" + t.name + "\" is " + dims_text(t.item_shape) + " per item in the engine, " +
                        dims_text(want) + " in the manifest (engine built from another export?)");
    if (t.is_input)
      inputs_.push_back(inputs[k]);
    else
      outputs_.push_back(outputs[k]);
  }
  if (inputs_.size() != net_.inputs.size() || outputs_.size() != net_.outputs.size())
    throw BundleError(s.path + ": the engine has " + std::to_string(inputs_.size()) + " input(s) and " +
                      std::to_string(outputs_.size()) + " output(s), network \"" + net_.name + "\" declares " +
                      std::to_string(net_.inputs.size()) + " and " + std::to_string(net_.outputs.size()));
  description_ = "TensorRT " + TrtEngine::library_version() + " (" + fs::path(s.path).filename().string() + ", " +
                 s.manifest.gpu_name + "), cuda:" + std::to_string(options_.device_index);
}

void TrtBackend::run(int64_t batch) {
  if (!engine_) throw ArgumentError("backend run: bind() was not called");
  try {
    // The calling thread may not have selected the engine's device yet (C ABI worker threads).
    const cudaError_t err = cudaSetDevice(options_.device_index);
    if (err != cudaSuccess) throw TrtError(std::string("cudaSetDevice: ") + cudaGetErrorString(err));
    if (!device_) return engine_->run_host(batch, inputs_, outputs_);
    engine_->enqueue(batch);
    engine_->synchronize();  // the runtime's stream reads the outputs next
  } catch (const TrtError& e) {
    throw BackendError(e.what());
  }
}

}  // namespace trt

std::unique_ptr<Backend> make_tensorrt_backend(const Bundle& bundle, const NetworkSpec& network,
                                               const BackendOptions& options) {
  return std::make_unique<trt::TrtBackend>(bundle, network, options);
}

bool tensorrt_engine_available(const Bundle& bundle, const NetworkSpec& network, const BackendOptions& options) {
  if (!options.cuda_device) return false;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || options.device_index >= count) return false;
  try {
    trt::select_engine(bundle, network, options, 0);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace edge

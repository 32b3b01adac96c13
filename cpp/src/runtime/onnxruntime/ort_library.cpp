#include "edge_sdk/runtime/ort_library.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

#include "edge_sdk/runtime/errors.hpp"
#include "ort_api.hpp"

namespace fs = std::filesystem;

namespace edge {
namespace {

std::mutex g_mutex;
std::unique_ptr<OrtLibraryInfo> g_info;
std::unique_ptr<Ort::Env> g_env;

// Directory of libedge_sdk itself, to find the onnxruntime wheel installed beside edge_sdk.
std::string own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_directory), &info) && info.dli_fname)
    return fs::path(info.dli_fname).parent_path().string();
  return "";
}

// libonnxruntime.so* files of a directory, highest version name first.
std::vector<std::string> libraries_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("libonnxruntime.so", 0) == 0 && n.find("providers") == std::string::npos) out.push_back(e.path().string());
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

std::vector<std::string> candidates(const std::string& path, std::string* origin) {
  if (!path.empty()) {
    *origin = "option";
    return {path};
  }
  if (const char* env = std::getenv("EDGE_SDK_ONNXRUNTIME_LIB"); env && *env) {
    *origin = "EDGE_SDK_ONNXRUNTIME_LIB";
    return {env};
  }
  *origin = "search";
  std::vector<std::string> out;
  const std::string own = own_directory();
  if (!own.empty()) {
    for (auto& p : libraries_in(fs::path(own).parent_path() / "onnxruntime" / "capi")) out.push_back(p);
    for (auto& p : libraries_in(own)) out.push_back(p);
  }
  out.push_back("libonnxruntime.so.1");
  out.push_back("libonnxruntime.so");
  return out;
}

}  // namespace

Ort::Env& ort_env() {
  if (!g_env) throw BackendError("ONNX Runtime is not loaded (call load_onnxruntime first)");
  return *g_env;
}

const OrtLibraryInfo& load_onnxruntime(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_info) {
    // One ONNX Runtime per process: its environment and the C++ API pointer are global.
    if (!path.empty() && fs::weakly_canonical(path) != fs::weakly_canonical(g_info->path))
      throw BackendError("onnxruntime library: " + path + " requested, but " + g_info->path +
                         " is already loaded in this process (one ONNX Runtime per process)");
    return *g_info;
  }
  std::string origin;
  const std::vector<std::string> tries = candidates(path, &origin);
  std::string errors;
  for (const auto& cand : tries) {
    void* h = dlopen(cand.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      errors += "\n  " + cand + ": " + (e ? e : "dlopen failed");
      continue;
    }
    using GetApiBaseFn = const OrtApiBase* (*)();
    auto get_base = reinterpret_cast<GetApiBaseFn>(dlsym(h, "OrtGetApiBase"));
    if (!get_base) {
      dlclose(h);
      errors += "\n  " + cand + ": no symbol OrtGetApiBase (not an ONNX Runtime library)";
      continue;
    }
    const OrtApiBase* base = get_base();
    const std::string version = base && base->GetVersionString ? base->GetVersionString() : "?";
    const OrtApi* api = base ? base->GetApi(ORT_API_VERSION) : nullptr;
    if (!api) {
      // Never dlclose a library that may have started threads; just report.
      throw BackendError("onnxruntime library " + cand + " is version " + version +
                         ", older than the headers this SDK was built with (API version " +
                         std::to_string(ORT_API_VERSION) + ", ONNX Runtime 1." +
                         std::to_string(ORT_API_VERSION) + " or newer needed)");
    }
    Ort::InitApi(api);
    auto info = std::make_unique<OrtLibraryInfo>();
    char resolved[4096] = {0};
    if (dlinfo(h, RTLD_DI_ORIGIN, resolved) == 0)
      info->path = (fs::path(resolved) / fs::path(cand).filename()).string();
    else
      info->path = cand;
    info->version = version;
    info->api_version = ORT_API_VERSION;
    try {
      info->providers = Ort::GetAvailableProviders();
      g_env = std::make_unique<Ort::Env>(ORT_LOGGING_LEVEL_WARNING, "edge_sdk");
    } catch (const Ort::Exception& e) {
      throw BackendError("onnxruntime library " + cand + ": initialization failed: " + e.what());
    }
    g_info = std::move(info);
    return *g_info;
  }
  std::string how = origin == "search" ? "searched (set EDGE_SDK_ONNXRUNTIME_LIB or the library option, or "
                                         "pip install onnxruntime next to edge_sdk)"
                                       : "from " + origin;
  throw BackendError("onnxruntime library not found, " + how + ":" + errors);
}

}  // namespace edge

#include "ov_library.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "edge_sdk/runtime/errors.hpp"

namespace fs = std::filesystem;

namespace edge {
namespace {

// The oldest release whose C API has every function of ov_api.hpp with those signatures
// (ov_get_last_err_msg and ov_core_read_model_from_memory_buffer are the newest of them).
constexpr int kMinYear = 2024, kMinMinor = 0;

std::mutex g_mutex;
std::unique_ptr<OpenVinoLibraryInfo> g_info;
ov::Api g_api{};
ov::Core* g_core = nullptr;

std::string own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_directory), &info) && info.dli_fname)
    return fs::path(info.dli_fname).parent_path().string();
  return "";
}

// libopenvino_c.so* files of a directory, highest version name first.
std::vector<std::string> libraries_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("libopenvino_c.so", 0) == 0) out.push_back(e.path().string());
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

std::vector<std::string> candidates(const std::string& path, std::string* origin) {
  if (!path.empty()) {
    *origin = "option";
    return {path};
  }
  if (const char* env = std::getenv("EDGE_SDK_OPENVINO_LIB"); env && *env) {
    *origin = "EDGE_SDK_OPENVINO_LIB";
    return {env};
  }
  *origin = "search";
  std::vector<std::string> out;
  const std::string own = own_directory();
  if (!own.empty())
    for (auto& p : libraries_in(fs::path(own).parent_path() / "openvino" / "libs")) out.push_back(p);
  out.push_back("libopenvino_c.so");
  return out;
}

// Every function of ov_api.hpp, looked up by its C name. Returns the names not found.
std::string bind_functions(void* h, ov::Api& api) {
  struct Entry {
    const char* name;
    void** slot;
  };
#define EDGE_OV_FN(field) Entry{"ov_" #field, reinterpret_cast<void**>(&api.field)}
  const Entry entries[] = {
      EDGE_OV_FN(get_openvino_version), EDGE_OV_FN(version_free), EDGE_OV_FN(get_error_info),
      EDGE_OV_FN(get_last_err_msg), EDGE_OV_FN(free), EDGE_OV_FN(core_create), EDGE_OV_FN(core_free),
      EDGE_OV_FN(core_get_available_devices), EDGE_OV_FN(available_devices_free),
      EDGE_OV_FN(core_read_model_from_memory_buffer), EDGE_OV_FN(model_free), EDGE_OV_FN(core_compile_model),
      EDGE_OV_FN(compiled_model_inputs_size), EDGE_OV_FN(compiled_model_outputs_size),
      EDGE_OV_FN(compiled_model_input_by_name), EDGE_OV_FN(compiled_model_output_by_name),
      EDGE_OV_FN(compiled_model_get_property), EDGE_OV_FN(compiled_model_create_infer_request),
      EDGE_OV_FN(compiled_model_free), EDGE_OV_FN(port_get_partial_shape),
      EDGE_OV_FN(port_get_element_type), EDGE_OV_FN(partial_shape_free), EDGE_OV_FN(output_const_port_free),
      EDGE_OV_FN(shape_create), EDGE_OV_FN(shape_free), EDGE_OV_FN(tensor_create_from_host_ptr),
      EDGE_OV_FN(tensor_get_byte_size), EDGE_OV_FN(tensor_free),
      EDGE_OV_FN(infer_request_set_tensor),
      EDGE_OV_FN(infer_request_infer), EDGE_OV_FN(infer_request_cancel), EDGE_OV_FN(infer_request_free),
  };
#undef EDGE_OV_FN
  std::string missing;
  for (const auto& e : entries) {
    *e.slot = dlsym(h, e.name);
    if (!*e.slot) missing += (missing.empty() ? "" : ", ") + std::string(e.name);
  }
  return missing;
}

}  // namespace

const ov::Api& ov_api() {
  if (!g_core) throw BackendError("OpenVINO is not loaded (call load_openvino first)");
  return g_api;
}

ov::Core* ov_core() {
  if (!g_core) throw BackendError("OpenVINO is not loaded (call load_openvino first)");
  return g_core;
}

std::string ov_error(const char* call, ov::Status status) {
  std::string msg;
  if (g_api.get_last_err_msg) {
    if (const char* m = g_api.get_last_err_msg()) {
      msg = m;
      g_api.free(m);
    }
  }
  // OpenVINO prefixes its messages with "Exception from <source file>:<line>:" lines: noise here.
  for (size_t at; (at = msg.find("Exception from ")) != std::string::npos;) {
    const size_t eol = msg.find('\n', at);
    msg.erase(at, eol == std::string::npos ? std::string::npos : eol - at + 1);
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (msg.empty()) msg = g_api.get_error_info ? g_api.get_error_info(status) : "error";
  return std::string(call) + ": " + msg + " (status " + std::to_string(status) + ")";
}

const OpenVinoLibraryInfo& load_openvino(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_info) {
    // One OpenVINO per process: the function table and the core are global.
    if (!path.empty() && fs::weakly_canonical(path) != fs::weakly_canonical(g_info->path))
      throw BackendError("openvino library: " + path + " requested, but " + g_info->path +
                         " is already loaded in this process (one OpenVINO per process)");
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
    ov::Api api{};
    const std::string missing = bind_functions(h, api);
    if (!api.get_openvino_version) {
      dlclose(h);
      errors += "\n  " + cand + ": no symbol ov_get_openvino_version (not OpenVINO's C API library libopenvino_c)";
      continue;
    }
    ov::Version v{nullptr, nullptr};
    std::string version = "?";
    if (api.get_openvino_version(&v) == ov::kOk && v.build_number) {
      version = v.build_number;
      if (api.version_free) api.version_free(&v);
    }
    int year = 0, minor = 0;
    const bool parsed = std::sscanf(version.c_str(), "%d.%d", &year, &minor) == 2;
    // Never dlclose a library that may have started threads; just report.
    if (!parsed || year < kMinYear || (year == kMinYear && minor < kMinMinor))
      throw BackendError("openvino library " + cand + " is version " + version + ", older than the OpenVINO C API " +
                         "this SDK calls (" + std::to_string(kMinYear) + "." + std::to_string(kMinMinor) +
                         " or newer needed: pip install openvino)");
    if (!missing.empty())
      throw BackendError("openvino library " + cand + " (version " + version +
                         ") lacks functions of the OpenVINO C API this SDK calls: " + missing);
    g_api = api;
    ov::Core* core = nullptr;
    if (const ov::Status s = g_api.core_create(&core); s != ov::kOk)
      throw BackendError("openvino library " + cand + ": " + ov_error("ov_core_create", s));
    auto info = std::make_unique<OpenVinoLibraryInfo>();
    char resolved[4096] = {0};
    info->path = dlinfo(h, RTLD_DI_ORIGIN, resolved) == 0 ? (fs::path(resolved) / fs::path(cand).filename()).string()
                                                           : cand;
    info->version = version;
    ov::AvailableDevices devs{nullptr, 0};
    if (g_api.core_get_available_devices(core, &devs) == ov::kOk) {
      for (size_t i = 0; i < devs.size; ++i) info->devices.emplace_back(devs.devices[i]);
      g_api.available_devices_free(&devs);
    }
    g_core = core;
    g_info = std::move(info);
    return *g_info;
  }
  const std::string how = origin == "search" ? "searched (set EDGE_SDK_OPENVINO_LIB or the openvino_library option, "
                                               "or pip install openvino next to edge_sdk)"
                                             : "from " + origin;
  throw BackendError("openvino library (libopenvino_c) not found, " + how + ":" + errors);
}

}  // namespace edge

// Stand-in for the C entry points of libnvinfer that the TensorRT backend calls, so that where only
// TensorRT's headers are present (CI) the backend can still be linked with -Wl,--no-undefined:
// a function the backend declares but nobody defines then fails the build, as it would on a GPU
// machine. Never loaded by anything that runs: createInferRuntime_INTERNAL reports no runtime.
#include <NvInferRuntime.h>

extern "C" {
void* createInferRuntime_INTERNAL(void*, int32_t) noexcept { return nullptr; }
int32_t getInferLibVersion() noexcept { return (NV_TENSORRT_MAJOR * 100 + NV_TENSORRT_MINOR) * 100 + NV_TENSORRT_PATCH; }
int32_t getInferLibMajorVersion() noexcept { return NV_TENSORRT_MAJOR; }
int32_t getInferLibMinorVersion() noexcept { return NV_TENSORRT_MINOR; }
int32_t getInferLibPatchVersion() noexcept { return NV_TENSORRT_PATCH; }
int32_t getInferLibBuildVersion() noexcept { return NV_TENSORRT_BUILD; }
}

# Installation of the C/C++ SDK: the shared library (whose exported C symbols are the stable ABI),
# the public headers (c_api.h and the header-only C++ wrapper edge_sdk.hpp only: the internal C++
# headers are not an interface) and a relocatable CMake package config, so a host program does
#   find_package(edge_sdk CONFIG REQUIRED)
#   target_link_libraries(host PRIVATE edge_sdk::edge_sdk)
# Layouts:
#   cmake --install build --prefix P   P/lib/libedge_sdk.so, P/include/edge_sdk/, P/lib/cmake/edge_sdk/
#   wheel (scikit-build-core)           edge_sdk/libedge_sdk.so (beside _core), edge_sdk/include/,
#                                       edge_sdk/share/cmake/edge_sdk/  (`edge-sdk config --cmake-dir`)
#   in-place build (not installed)      edge_sdk/share/cmake/edge_sdk/ points at the build outputs
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

foreach(_part MAJOR MINOR)
  file(STRINGS ${PROJECT_SOURCE_DIR}/cpp/include/edge_sdk/c_api.h _abi_line
       REGEX "^#define EDGE_ABI_VERSION_${_part} [0-9]+")
  string(REGEX REPLACE ".* ([0-9]+)$" "\\1" EDGE_SDK_ABI_VERSION_${_part} "${_abi_line}")
endforeach()

if(SKBUILD)
  set(EDGE_SDK_INSTALL_LIBDIR edge_sdk)
  set(EDGE_SDK_INSTALL_INCLUDEDIR edge_sdk/include)
  set(EDGE_SDK_INSTALL_CMAKEDIR edge_sdk/share/cmake/edge_sdk)
else()
  set(EDGE_SDK_INSTALL_LIBDIR ${CMAKE_INSTALL_LIBDIR})
  set(EDGE_SDK_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
  set(EDGE_SDK_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/edge_sdk)
endif()

set(EDGE_SDK_PUBLIC_HEADERS
  ${PROJECT_SOURCE_DIR}/cpp/include/edge_sdk/c_api.h
  ${PROJECT_SOURCE_DIR}/cpp/include/edge_sdk/edge_sdk.hpp)

# The SONAME follows the C ABI's major version: libedge_sdk.so.1 stays loadable by hosts built
# against any 1.x header. (The wheel ships one unversioned file: zip archives have no symlinks.)
set_target_properties(edge_sdk_core PROPERTIES EXPORT_NAME edge_sdk)
if(NOT SKBUILD)
  set_target_properties(edge_sdk_core PROPERTIES
    VERSION ${EDGE_SDK_ABI_VERSION_MAJOR}.${EDGE_SDK_ABI_VERSION_MINOR} SOVERSION ${EDGE_SDK_ABI_VERSION_MAJOR})
endif()
target_compile_definitions(edge_sdk_core PRIVATE EDGE_SDK_BUILDING_LIBRARY=1
  EDGE_SDK_VERSION_STRING="${PROJECT_VERSION}")

set(EDGE_SDK_BACKENDS "")
if(EDGE_SDK_HAVE_ORT)
  set(EDGE_SDK_BACKENDS "onnxruntime")
endif()

install(TARGETS edge_sdk_core EXPORT edge_sdkTargets
  LIBRARY DESTINATION ${EDGE_SDK_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${EDGE_SDK_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${EDGE_SDK_INSTALL_INCLUDEDIR})
install(FILES ${EDGE_SDK_PUBLIC_HEADERS} DESTINATION ${EDGE_SDK_INSTALL_INCLUDEDIR}/edge_sdk)
install(EXPORT edge_sdkTargets NAMESPACE edge_sdk:: DESTINATION ${EDGE_SDK_INSTALL_CMAKEDIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/edge_sdkConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sdk/edge_sdkConfig.cmake INSTALL_DESTINATION ${EDGE_SDK_INSTALL_CMAKEDIR})
# The package version is the project's (0.x: only the same minor version is compatible);
# the C ABI's own compatibility is the library's SONAME and edge_abi_version().
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sdk/edge_sdkConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sdk/edge_sdkConfig.cmake ${PROJECT_BINARY_DIR}/sdk/edge_sdkConfigVersion.cmake
  DESTINATION ${EDGE_SDK_INSTALL_CMAKEDIR})

# In-place build: a package config beside the in-place library so that the source tree works as an
# SDK too (`edge-sdk config --cmake-dir` from a checkout). It points at the build outputs and at
# cpp/include (which also holds the internal headers: use an installed SDK for a clean interface).
# Only for the build that writes the in-place library (see EDGE_SDK_INPLACE_DIR in CMakeLists.txt).
if(NOT SKBUILD AND EDGE_SDK_INPLACE_DIR)
  set(_inplace_cmake ${EDGE_SDK_INPLACE_DIR}/share/cmake/edge_sdk)
  export(EXPORT edge_sdkTargets NAMESPACE edge_sdk:: FILE ${_inplace_cmake}/edge_sdkTargets.cmake)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/edge_sdkConfig.cmake.in
    ${_inplace_cmake}/edge_sdkConfig.cmake INSTALL_DESTINATION ${_inplace_cmake} INSTALL_PREFIX ${PROJECT_SOURCE_DIR})
  configure_file(${PROJECT_BINARY_DIR}/sdk/edge_sdkConfigVersion.cmake ${_inplace_cmake}/edge_sdkConfigVersion.cmake COPYONLY)
endif()

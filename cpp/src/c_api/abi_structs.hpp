// How the C entry points read and write the caller's versioned structs (c_api.h: every struct starts
// with struct_size, filled by its _init function). One definition for every c_api_*.cpp file.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "edge_sdk/c_api.h"
#include "status.hpp"

namespace edge::capi {

// Sizes of the structs as the ABI version that introduced them defined them (up to their last field
// of that version: 1.0; 1.2 for edge_run_options and the class structs). Frozen: later minor
// versions append fields and must keep accepting callers built against older headers, reading and
// writing only the first struct_size bytes.
template <class T>
constexpr size_t abi_min_size();
template <>
constexpr size_t abi_min_size<edge_open_options>() { return offsetof(edge_open_options, review_band) + sizeof(double); }
template <>
constexpr size_t abi_min_size<edge_input_spec>() { return offsetof(edge_input_spec, value_max) + sizeof(double); }
template <>
constexpr size_t abi_min_size<edge_output_spec>() { return offsetof(edge_output_spec, deadline_ms) + sizeof(double); }
template <>
constexpr size_t abi_min_size<edge_region_spec>() { return offsetof(edge_region_spec, threshold) + sizeof(double); }
template <>
constexpr size_t abi_min_size<edge_batch_outputs>() { return offsetof(edge_batch_outputs, deadline_exceeded) + sizeof(int32_t); }
template <>
constexpr size_t abi_min_size<edge_run_options>() { return offsetof(edge_run_options, deadline_ms) + sizeof(double); }
template <>
constexpr size_t abi_min_size<edge_run_status>() { return offsetof(edge_run_status, missing) + sizeof(int32_t); }
template <>
constexpr size_t abi_min_size<edge_class_spec>() { return offsetof(edge_class_spec, reject_threshold) + sizeof(double); }
template <>
constexpr size_t abi_min_size<edge_class_outputs>() { return offsetof(edge_class_outputs, top_class_capacity) + sizeof(size_t); }

// struct_size of a caller's struct must cover at least the fields of the version that introduced it.
template <class T>
void check_struct(const T* p, const char* what) {
  if (!p) throw StatusError(EDGE_E_INVALID_ARGUMENT, std::string(what) + ": null pointer");
  if (p->struct_size < abi_min_size<T>())
    throw StatusError(EDGE_E_INVALID_ARGUMENT, std::string(what) + "->struct_size: " + std::to_string(p->struct_size) +
                                                   ", expected at least " + std::to_string(abi_min_size<T>()) +
                                                   " (initialize it with its _init function)");
}

// Writes `value` into the caller's struct: no more than its struct_size bytes, struct_size kept.
template <class T>
void write_struct(T* out, const T& value) {
  const uint32_t size = out->struct_size;
  std::memcpy(out, &value, std::min<size_t>(size, sizeof(T)));
  out->struct_size = size;
}

}  // namespace edge::capi

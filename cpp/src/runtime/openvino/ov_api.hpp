// The part of OpenVINO's C API (openvino/c/*.h, library libopenvino_c) this backend calls, declared
// here so that building needs no OpenVINO headers: the library is opened at run time with dlopen
// and each function looked up by name (ov_library.cpp). The declarations follow the C API of
// OpenVINO 2024.0 to 2026.4 (checked against 2026.4.1): opaque handles, the few plain structs
// below, functions returning ov_status_e (0 = OK).
//
// ov_element_type_e is deliberately absent: its numbering changed between releases (UNDEFINED was
// dropped from the front: f32 is 5 in the 2024 headers, 4 in 2026.4). The backend never names an element
// type by number: tensors take the type the compiled model reports for their port, and the size
// of that type is checked to be 4 bytes, the float32 the manifest declares.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edge::ov {

struct Core;
struct Model;
struct CompiledModel;
struct InferRequest;
struct Tensor;
struct ConstPort;

using Status = int;       // ov_status_e
using ElementType = int;  // ov_element_type_e, only passed back to the library
constexpr Status kOk = 0;
constexpr Status kInferCancelled = -13;

struct Version {  // ov_version_t
  const char* build_number;
  const char* description;
};

struct Shape {  // ov_shape_t
  int64_t rank;
  int64_t* dims;
};

struct Dimension {  // ov_dimension_t (min == max: static; max == -1: unbounded)
  int64_t min;
  int64_t max;
};

struct PartialShape {  // ov_partial_shape_t (rank is an ov_rank_t = ov_dimension_t)
  Dimension rank;
  Dimension* dims;
};

struct AvailableDevices {  // ov_available_devices_t
  char** devices;
  size_t size;
};

// Function pointer types, one per C function (same names without the ov_ prefix).
struct Api {
  Status (*get_openvino_version)(Version*);
  void (*version_free)(Version*);
  const char* (*get_error_info)(Status);
  const char* (*get_last_err_msg)();  // allocated; released with ov_free
  void (*free)(const char*);

  Status (*core_create)(Core**);
  void (*core_free)(Core*);
  Status (*core_get_available_devices)(const Core*, AvailableDevices*);
  void (*available_devices_free)(AvailableDevices*);
  Status (*core_read_model_from_memory_buffer)(const Core*, const char*, size_t, const Tensor*, Model**);
  void (*model_free)(Model*);
  // Variadic: property_args_size counts the strings that follow (two per property: key, value).
  Status (*core_compile_model)(const Core*, const Model*, const char* device, size_t property_args_size,
                               CompiledModel**, ...);

  Status (*compiled_model_inputs_size)(const CompiledModel*, size_t*);
  Status (*compiled_model_outputs_size)(const CompiledModel*, size_t*);
  Status (*compiled_model_input_by_name)(const CompiledModel*, const char*, ConstPort**);
  Status (*compiled_model_output_by_name)(const CompiledModel*, const char*, ConstPort**);
  Status (*compiled_model_get_property)(const CompiledModel*, const char* key, char** value);
  Status (*compiled_model_create_infer_request)(const CompiledModel*, InferRequest**);
  void (*compiled_model_free)(CompiledModel*);

  Status (*port_get_partial_shape)(const ConstPort*, PartialShape*);
  Status (*port_get_element_type)(const ConstPort*, ElementType*);
  void (*partial_shape_free)(PartialShape*);
  void (*output_const_port_free)(ConstPort*);

  Status (*shape_create)(int64_t rank, const int64_t* dims, Shape*);
  Status (*shape_free)(Shape*);
  Status (*tensor_create_from_host_ptr)(ElementType, Shape, void*, Tensor**);
  Status (*tensor_get_byte_size)(const Tensor*, size_t*);
  void (*tensor_free)(Tensor*);

  Status (*infer_request_set_tensor)(InferRequest*, const char* tensor_name, const Tensor*);
  Status (*infer_request_infer)(InferRequest*);
  Status (*infer_request_cancel)(InferRequest*);
  void (*infer_request_free)(InferRequest*);
};

}  // namespace edge::ov

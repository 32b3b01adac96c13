// Each post-processing kind registers its factory from its own file (like the Python binders),
// so adding a kind touches no shared file: one class (postprocess.hpp) whose stages call the
// kernels through exec.hpp, which runs it on the CPU and on a CUDA device alike.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "postprocess.hpp"

namespace edge {

using PostFactory = std::function<std::unique_ptr<PostProcessor>(const Bundle&, int64_t, const Exec&)>;

std::map<std::string, PostFactory>& postprocess_registry();

struct RegisterPostprocess {
  RegisterPostprocess(const char* kind, PostFactory f) { postprocess_registry()[kind] = std::move(f); }
};

}  // namespace edge

#define EDGE_REGISTER_POSTPROCESS_CAT2(a, b) a##b
#define EDGE_REGISTER_POSTPROCESS_CAT(a, b) EDGE_REGISTER_POSTPROCESS_CAT2(a, b)
#define EDGE_REGISTER_POSTPROCESS(kind, Class)                                                         \
  static ::edge::RegisterPostprocess EDGE_REGISTER_POSTPROCESS_CAT(edge_post_reg_, __LINE__)(          \
      kind, [](const ::edge::Bundle& b, int64_t max_batch, const ::edge::Exec& exec) {                \
        return std::unique_ptr<::edge::PostProcessor>(new Class(b, max_batch, exec));                  \
      })

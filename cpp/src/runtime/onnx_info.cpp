#include "edge_sdk/runtime/onnx_info.hpp"

#include <set>

#include "edge_sdk/runtime/errors.hpp"

namespace edge {

const char* onnx_elem_type_name(int32_t t) {
  switch (t) {
    case 1: return "float32";
    case 2: return "uint8";
    case 3: return "int8";
    case 5: return "int16";
    case 6: return "int32";
    case 7: return "int64";
    case 9: return "bool";
    case 10: return "float16";
    case 11: return "float64";
    case 16: return "bfloat16";
    default: return "other";
  }
}

namespace {

struct Malformed {
  std::string what;
};
struct Refused {  // well-formed, but not allowed in a bundle
  std::string what;
};

// One protobuf message: iterate fields with next(); length-delimited payloads come back as a
// sub-reader. All reads are bounds-checked.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  bool done() const { return p_ >= end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) throw Malformed{"truncated varint"};
      const uint8_t b = *p_++;
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw Malformed{"varint longer than 10 bytes"};
  }

  // Reads a tag; returns field number and wire type.
  void tag(uint32_t* field, uint32_t* wire) {
    const uint64_t t = varint();
    *field = uint32_t(t >> 3);
    *wire = uint32_t(t & 7);
    if (*field == 0) throw Malformed{"field number 0"};
  }

  Reader bytes() {
    const uint64_t n = varint();
    if (n > uint64_t(end_ - p_)) throw Malformed{"length-delimited field runs past the end"};
    Reader r(p_, size_t(n));
    p_ += n;
    return r;
  }

  std::string str() {
    Reader r = bytes();
    return std::string(reinterpret_cast<const char*>(r.p_), size_t(r.end_ - r.p_));
  }

  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: advance(8); break;
      case 2: bytes(); break;
      case 5: advance(4); break;
      default: throw Malformed{"unsupported wire type " + std::to_string(wire)};
    }
  }

 private:
  void advance(size_t n) {
    if (size_t(end_ - p_) < n) throw Malformed{"truncated fixed-size field"};
    p_ += n;
  }
  const uint8_t* p_;
  const uint8_t* end_;
};

void expect_wire(uint32_t got, uint32_t want, const char* field) {
  if (got != want) throw Malformed{std::string("unexpected wire type for ") + field};
}

// TensorShapeProto.Dimension
void read_dim(Reader r, OnnxValueInfo& v) {
  int64_t value = -1;
  std::string param;
  while (!r.done()) {
    uint32_t f, w;
    r.tag(&f, &w);
    if (f == 1) {
      expect_wire(w, 0, "dim_value");
      value = int64_t(r.varint());
    } else if (f == 2) {
      expect_wire(w, 2, "dim_param");
      param = r.str();
    } else {
      r.skip(w);
    }
  }
  v.dims.push_back(param.empty() ? value : -1);
  v.dim_params.push_back(param);
}

// TypeProto -> TypeProto.Tensor (field 1) -> elem_type (1), shape (2) -> dim (1)
void read_type(Reader r, OnnxValueInfo& v) {
  while (!r.done()) {
    uint32_t f, w;
    r.tag(&f, &w);
    if (f != 1) {
      r.skip(w);
      continue;
    }
    expect_wire(w, 2, "tensor_type");
    Reader t = r.bytes();
    while (!t.done()) {
      uint32_t tf, tw;
      t.tag(&tf, &tw);
      if (tf == 1) {
        expect_wire(tw, 0, "elem_type");
        v.elem_type = int32_t(t.varint());
      } else if (tf == 2) {
        expect_wire(tw, 2, "shape");
        v.has_shape = true;
        Reader s = t.bytes();
        while (!s.done()) {
          uint32_t sf, sw;
          s.tag(&sf, &sw);
          if (sf == 1) {
            expect_wire(sw, 2, "dim");
            read_dim(s.bytes(), v);
          } else {
            s.skip(sw);
          }
        }
      } else {
        t.skip(tw);
      }
    }
  }
}

OnnxValueInfo read_value_info(Reader r) {
  OnnxValueInfo v;
  while (!r.done()) {
    uint32_t f, w;
    r.tag(&f, &w);
    if (f == 1) {
      expect_wire(w, 2, "ValueInfoProto.name");
      v.name = r.str();
    } else if (f == 2) {
      expect_wire(w, 2, "ValueInfoProto.type");
      read_type(r.bytes(), v);
    } else {
      r.skip(w);
    }
  }
  return v;
}

// Tensors stored as "external data" name a file that ONNX Runtime opens relative to the process's
// working directory when a model is loaded from memory: bytes no checksum covers. Bundles carry
// every tensor inside the verified .onnx file, so any tensor anywhere in the model (initializers,
// sparse initializers, Constant-node and subgraph attributes, functions) that points outside it
// is refused. Nesting is bounded so a crafted file cannot exhaust the stack.
constexpr int kMaxGraphNesting = 64;

void check_graph_tensors(Reader r, int depth, const std::string& where);

// TensorProto: name 8, external_data 13, data_location 14 (EXTERNAL = 1).
std::string check_tensor(Reader r, const std::string& where) {
  std::string name;
  bool external = false;
  while (!r.done()) {
    uint32_t f, w;
    r.tag(&f, &w);
    if (f == 8 && w == 2) {
      name = r.str();
    } else if (f == 13) {
      external = true;
      r.skip(w);
    } else if (f == 14 && w == 0) {
      if (r.varint() != 0) external = true;
    } else {
      r.skip(w);
    }
  }
  if (external)
    throw Refused{"tensor \"" + name + "\" in " + where +
                    " keeps its data in an external file; bundles must hold every tensor inside the "
                    ".onnx file (external data would be read from outside the verified bundle)"};
  return name;
}

// Calls on(field, payload) for every length-delimited field of a message (sub-messages, strings);
// the walks below look only at sub-messages and skip everything else.
template <class F>
void each_message_field(Reader r, F&& on) {
  while (!r.done()) {
    uint32_t f, w;
    r.tag(&f, &w);
    if (w == 2) on(f, r.bytes());
    else r.skip(w);
  }
}

// SparseTensorProto: values 1, indices 2 (both TensorProto).
void check_sparse_tensor(Reader r, const std::string& where) {
  each_message_field(r, [&](uint32_t f, Reader m) {
    if (f == 1 || f == 2) check_tensor(m, where);
  });
}

// AttributeProto: t 5, g 6, tensors 10, graphs 11, sparse_tensor 22, sparse_tensors 23.
void check_attribute(Reader r, int depth, const std::string& where) {
  each_message_field(r, [&](uint32_t f, Reader m) {
    if (f == 5 || f == 10) check_tensor(m, where + " (node attribute)");
    else if (f == 6 || f == 11) check_graph_tensors(m, depth + 1, where + " (subgraph)");
    else if (f == 22 || f == 23) check_sparse_tensor(m, where + " (node attribute)");
  });
}

// NodeProto: attribute 5.
void check_node(Reader r, int depth, const std::string& where) {
  each_message_field(r, [&](uint32_t f, Reader m) {
    if (f == 5) check_attribute(m, depth, where);
  });
}

// FunctionProto: node 7.
void check_function(Reader r, int depth) {
  each_message_field(r, [&](uint32_t f, Reader m) {
    if (f == 7) check_node(m, depth, "a model function");
  });
}

// GraphProto: node 1, initializer 5, sparse_initializer 15.
void check_graph_tensors(Reader r, int depth, const std::string& where) {
  if (depth > kMaxGraphNesting) throw Malformed{"subgraphs nested deeper than " + std::to_string(kMaxGraphNesting)};
  each_message_field(r, [&](uint32_t f, Reader m) {
    if (f == 1) check_node(m, depth, where);
    else if (f == 5) check_tensor(m, where + " (initializer)");
    else if (f == 15) check_sparse_tensor(m, where + " (sparse initializer)");
  });
}

void read_graph(Reader r, OnnxInfo& info) {
  check_graph_tensors(r, 0, "the graph");
  std::vector<OnnxValueInfo> inputs;
  std::set<std::string> initializers;
  while (!r.done()) {
    uint32_t f, w;
    r.tag(&f, &w);
    switch (f) {
      case 1: expect_wire(w, 2, "node"); r.bytes(); ++info.node_count; break;
      case 5: expect_wire(w, 2, "initializer"); initializers.insert(check_tensor(r.bytes(), "the graph")); break;
      case 11: expect_wire(w, 2, "input"); inputs.push_back(read_value_info(r.bytes())); break;
      case 12: expect_wire(w, 2, "output"); info.outputs.push_back(read_value_info(r.bytes())); break;
      default: r.skip(w);
    }
  }
  for (auto& v : inputs)
    if (!initializers.count(v.name)) info.inputs.push_back(std::move(v));
}

}  // namespace

OnnxInfo read_onnx_info(const uint8_t* data, size_t size, const std::string& source) {
  OnnxInfo info;
  bool has_graph = false;
  try {
    Reader r(data, size);
    while (!r.done()) {
      uint32_t f, w;
      r.tag(&f, &w);
      switch (f) {
        case 1: expect_wire(w, 0, "ir_version"); info.ir_version = int64_t(r.varint()); break;
        case 2: expect_wire(w, 2, "producer_name"); info.producer_name = r.str(); break;
        case 3: expect_wire(w, 2, "producer_version"); info.producer_version = r.str(); break;
        case 7:
          expect_wire(w, 2, "graph");
          read_graph(r.bytes(), info);
          has_graph = true;
          break;
        case 8: {
          expect_wire(w, 2, "opset_import");
          Reader o = r.bytes();
          std::string domain;
          int64_t version = 0;
          while (!o.done()) {
            uint32_t of, ow;
            o.tag(&of, &ow);
            if (of == 1 && ow == 2) domain = o.str();
            else if (of == 2 && ow == 0) version = int64_t(o.varint());
            else o.skip(ow);
          }
          info.opsets[domain == "ai.onnx" ? "" : domain] = version;
          break;
        }
        case 25:
          expect_wire(w, 2, "functions");
          check_function(r.bytes(), 0);
          break;
        case 14: {
          expect_wire(w, 2, "metadata_props");
          Reader m = r.bytes();
          std::string key, value;
          while (!m.done()) {
            uint32_t mf, mw;
            m.tag(&mf, &mw);
            if (mf == 1 && mw == 2) key = m.str();
            else if (mf == 2 && mw == 2) value = m.str();
            else m.skip(mw);
          }
          info.metadata[key] = value;
          break;
        }
        default: r.skip(w);
      }
    }
  } catch (const Malformed& m) {
    throw BundleError(source + ": not a valid ONNX model (" + m.what + ")");
  } catch (const Refused& m) {
    throw BundleError(source + ": " + m.what);
  }
  if (!has_graph || info.ir_version <= 0)
    throw BundleError(source + ": not a valid ONNX model (no graph or no ir_version)");
  if (info.outputs.empty()) throw BundleError(source + ": not a valid ONNX model (graph has no outputs)");
  return info;
}

}  // namespace edge

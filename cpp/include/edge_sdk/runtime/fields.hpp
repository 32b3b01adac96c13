// Typed access to JSON object members with errors that name the document and the field path
// ("manifest.json: postprocess.k: expected an integer >= 1, got 0"). Used for the manifest and
// for the kind-specific post-processing specs.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "edge_sdk/runtime/errors.hpp"
#include "edge_sdk/runtime/json.hpp"

namespace edge {

class Fields {
 public:
  Fields(const json::Value& obj, std::string source, std::string path)
      : obj_(obj), source_(std::move(source)), path_(std::move(path)) {
    if (!obj_.is_object()) fail("", std::string("expected an object, got ") + obj_.type_name());
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw BundleError(source_ + ": " + field(key) + ": " + what);
  }
  std::string field(const std::string& key) const {
    if (key.empty()) return path_.empty() ? "(top level)" : path_;
    return path_.empty() ? key : path_ + "." + key;
  }
  const std::string& source() const { return source_; }
  bool has(const std::string& key) const { return obj_.find(key) != nullptr; }

  const json::Value& get(const std::string& key) const {
    const json::Value* v = obj_.find(key);
    if (!v) fail(key, "missing");
    return *v;
  }
  Fields object(const std::string& key) const { return Fields(get(key), source_, field(key)); }

  std::string str(const std::string& key) const {
    const auto& v = get(key);
    if (!v.is_string()) fail(key, std::string("expected a string, got ") + v.type_name());
    return v.as_string();
  }
  std::string str(const std::string& key, const std::string& def) const { return has(key) ? str(key) : def; }
  std::string one_of(const std::string& key, const std::vector<std::string>& allowed) const {
    const std::string s = str(key);
    for (const auto& a : allowed)
      if (s == a) return s;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
    fail(key, "expected one of " + list + ", got \"" + s + "\"");
  }

  int64_t integer(const std::string& key, int64_t lo, int64_t hi = INT64_MAX) const {
    const auto& v = get(key);
    if (!v.is_integer()) fail(key, std::string("expected an integer, got ") + v.type_name());
    const int64_t i = v.as_int();
    if (i < lo || i > hi) fail(key, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                        "], got " + std::to_string(i));
    return i;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi, int64_t def) const {
    return has(key) ? integer(key, lo, hi) : def;
  }

  double number(const std::string& key) const {
    const auto& v = get(key);
    if (!v.is_number()) fail(key, std::string("expected a number, got ") + v.type_name());
    return v.as_double();
  }
  double number(const std::string& key, double def) const { return has(key) ? number(key) : def; }
  double positive(const std::string& key) const {
    const double d = number(key);
    if (!(d > 0.0)) fail(key, "expected a number > 0, got " + std::to_string(d));
    return d;
  }

  bool boolean(const std::string& key) const {
    const auto& v = get(key);
    if (!v.is_bool()) fail(key, std::string("expected true or false, got ") + v.type_name());
    return v.as_bool();
  }
  bool boolean(const std::string& key, bool def) const { return has(key) ? boolean(key) : def; }

  const json::Value::Array& array(const std::string& key) const {
    const auto& v = get(key);
    if (!v.is_array()) fail(key, std::string("expected an array, got ") + v.type_name());
    return v.as_array();
  }
  std::vector<double> numbers(const std::string& key) const {
    std::vector<double> out;
    for (const auto& e : array(key)) {
      if (!e.is_number()) fail(key, "expected an array of numbers");
      out.push_back(e.as_double());
    }
    return out;
  }
  std::vector<int64_t> integers(const std::string& key) const {
    std::vector<int64_t> out;
    for (const auto& e : array(key)) {
      if (!e.is_integer()) fail(key, "expected an array of integers");
      out.push_back(e.as_int());
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& e : array(key)) {
      if (!e.is_string()) fail(key, "expected an array of strings");
      out.push_back(e.as_string());
    }
    return out;
  }

 private:
  const json::Value& obj_;
  std::string source_, path_;
};

}  // namespace edge

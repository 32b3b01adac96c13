// A small JSON reader and writer for bundle manifests and safetensors headers (RFC 8259: UTF-8
// text, objects keep their key order, numbers as double with exact int64 for integer literals).
// No third-party dependency so the runtime builds anywhere the kernels build.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace edge {
namespace json {

// Malformed JSON. The message is "<source>:<line>:<column>: <what>".
struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Value {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;

  Value() = default;
  Value(const Value& o);
  Value(Value&&) noexcept = default;
  Value& operator=(const Value& o);
  Value& operator=(Value&&) noexcept = default;
  ~Value() = default;
  static Value null() { return Value(); }
  static Value boolean(bool b);
  static Value number(double d);
  static Value integer(int64_t i);
  static Value string(std::string s);
  static Value array(Array a = {});
  static Value object(Object o = {});

  Type type() const { return type_; }
  const char* type_name() const;
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  // A number written without fraction or exponent that fits in int64 (e.g. 256, -1).
  bool is_integer() const { return type_ == Type::Number && integral_; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Accessors assume the type was checked (they throw std::logic_error otherwise).
  bool as_bool() const;
  double as_double() const;
  int64_t as_int() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;
  Array& as_array();
  Object& as_object();

  // Object member by key, or nullptr (also for non-objects).
  const Value* find(const std::string& key) const;
  // Adds or replaces an object member.
  void set(const std::string& key, Value v);
  // Removes an object member if present.
  void erase(const std::string& key);

  // Deep equality; object members compare regardless of order, numbers by value.
  bool operator==(const Value& o) const;
  bool operator!=(const Value& o) const { return !(*this == o); }

  // Compact JSON text (integers exactly, other numbers with 17 significant digits).
  std::string dump() const;

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  bool integral_ = false;
  double num_ = 0.0;
  int64_t int_ = 0;
  std::string str_;
  std::unique_ptr<Array> arr_;  // behind a pointer: Value is incomplete inside its own definition
  std::unique_ptr<Object> obj_;
};

// Parses a complete JSON text. `source` names the file in error messages. Duplicate object keys,
// trailing content, invalid escapes, invalid UTF-8 and nesting deeper than 128 are errors.
Value parse(const std::string& text, const std::string& source = "json");

}  // namespace json
}  // namespace edge

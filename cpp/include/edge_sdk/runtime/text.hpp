// Text from bundle bytes (tar entry names, JSON text, ONNX names) ends up in error messages that
// hosts receive as UTF-8: a Python str, the C ABI's edge_last_error. One helper makes any such
// text safe to pass on.
#pragma once

#include <cstddef>
#include <string>

namespace edge {

// `s` with every byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), and every ASCII control character, written as
// the four ASCII characters \xNN. The result is valid UTF-8 and prints without moving a
// terminal's cursor; valid text other than controls is unchanged.
std::string utf8_sanitize(const std::string& s);

// True when `s` is well-formed UTF-8 (the rules above, control characters allowed).
bool utf8_valid(const std::string& s);

// Length of the well-formed UTF-8 sequence starting at s[i] (1-4), or 0 when there is none.
size_t utf8_length(const std::string& s, size_t i);

}  // namespace edge

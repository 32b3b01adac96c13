#include "edge_sdk/runtime/text.hpp"

#include <cstddef>
#include <cstdio>

namespace edge {

size_t utf8_length(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t extra;
  unsigned cp, min;
  if ((c & 0xE0) == 0xC0) {
    extra = 1; cp = c & 0x1F; min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    extra = 2; cp = c & 0x0F; min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    extra = 3; cp = c & 0x07; min = 0x10000;
  } else {
    return 0;
  }
  if (extra >= s.size() - i) return 0;
  for (size_t k = 1; k <= extra; ++k) {
    const unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return extra + 1;
}

std::string utf8_sanitize(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_length(s, i);
    if (n == 0 || c < 0x20 || c == 0x7F) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

bool utf8_valid(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace edge

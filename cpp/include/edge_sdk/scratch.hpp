// Per-thread scratch vectors for the CPU kernels. A kernel on the runtime's hot path must not
// allocate once warm, and a std::vector declared per call (or per parallel task) does each time.
// thread_scratch<Tag, T>(n) returns this thread's vector for the call site `Tag`, holding n
// elements set to `value` (as std::vector<T>(n, value) would); its capacity only grows, so once
// the largest request of the site has been seen on a thread it never allocates again.
// Tag is a type unique to the call site. Two live uses of one tag on one thread share storage, so
// a tag belongs to one site of a function that is never re-entered on the same thread.
#pragma once

#include <cstddef>
#include <vector>

namespace edge {

template <class Tag, class T>
std::vector<T>& thread_scratch(size_t n, const T& value = T()) {
  thread_local std::vector<T> v;
  v.assign(n, value);
  return v;
}

}  // namespace edge

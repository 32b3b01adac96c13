#include "edge_sdk/runtime/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "edge_sdk/runtime/errors.hpp"

namespace edge {

RegularFile::RegularFile(const std::string& path, std::string shown) : shown_(std::move(shown)) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) throw BundleError(shown_ + ": cannot be opened (" + std::strerror(errno) + ")");
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    throw BundleError(shown_ + ": cannot be inspected (" + std::strerror(e) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    const char* what = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" :
                       S_ISSOCK(st.st_mode) ? "a socket" : (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? "a device" :
                       "not a regular file";
    throw BundleError(shown_ + ": is " + what + ", not a regular file (only regular files are read)");
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RegularFile::read_into(uint64_t offset, uint64_t n, uint8_t* out) const {
  if (offset > size_ || n > size_ - offset)
    throw BundleError(shown_ + ": read of " + std::to_string(n) + " bytes at " + std::to_string(offset) +
                      " is past its end (" + std::to_string(size_) + " bytes)");
  uint64_t done = 0;
  while (done < n) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - done, uint64_t(1) << 30));
    const ssize_t r = ::pread(fd_, out + done, chunk, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw BundleError(shown_ + ": read error (" + std::strerror(errno) + ")");
    }
    if (r == 0) throw BundleError(shown_ + ": ended early (the file shrank while being read)");
    done += static_cast<uint64_t>(r);
  }
}

std::vector<uint8_t> RegularFile::read(uint64_t offset, uint64_t n) const {
  if (offset > size_ || n > size_ - offset)
    throw BundleError(shown_ + ": read of " + std::to_string(n) + " bytes at " + std::to_string(offset) +
                      " is past its end (" + std::to_string(size_) + " bytes)");
  std::vector<uint8_t> data(static_cast<size_t>(n));
  read_into(offset, n, data.data());
  return data;
}

std::vector<uint8_t> read_regular_file(const std::string& path, const std::string& shown, uint64_t max_bytes,
                                       const std::string& limit_name) {
  RegularFile f(path, shown);
  if (f.size() > max_bytes)
    throw BundleError(shown + ": " + std::to_string(f.size()) + " bytes, more than the " + limit_name + " of " +
                      std::to_string(max_bytes) + " bytes (not read)");
  return f.read(0, f.size());
}

}  // namespace edge

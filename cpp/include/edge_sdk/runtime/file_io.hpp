// Reading bundle files without trusting them: only regular files are read (a FIFO, device or
// socket given as a bundle or inside one would block or never end), the size is known from fstat
// before a byte is read, and reads never go past it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edge {

class RegularFile {
 public:
  // Opens `path` (O_NONBLOCK, so opening a FIFO cannot block) and refuses anything but a regular
  // file. `shown` names the file in errors (BundleError).
  RegularFile(const std::string& path, std::string shown);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  uint64_t size() const { return size_; }
  const std::string& shown() const { return shown_; }
  // Exactly n bytes at offset (n <= size - offset); a short read (the file shrank while being
  // read) is an error naming the file.
  std::vector<uint8_t> read(uint64_t offset, uint64_t n) const;
  void read_into(uint64_t offset, uint64_t n, uint8_t* out) const;

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string shown_;
};

// The whole file, refused before reading when larger than max_bytes (`limit_name` says which cap).
std::vector<uint8_t> read_regular_file(const std::string& path, const std::string& shown, uint64_t max_bytes,
                                       const std::string& limit_name);

}  // namespace edge

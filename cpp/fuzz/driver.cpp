// A stand-in for libFuzzer's main where there is none (gcc): replays every file of the corpus
// directories, then mutates corpus inputs at random (bit flips, byte overwrites with interesting
// values, insertions, deletions, splices of two inputs) until the time or run budget is spent.
// No coverage feedback, so it finds less than libFuzzer; scripts/fuzz.sh prefers libFuzzer.
//   fuzz_bundle [-max_total_time=S] [-runs=N] [-seed=N] CORPUS_DIR...
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  double max_time = 60;
  long long runs = -1;
  uint64_t seed = std::random_device{}();
  std::vector<std::vector<uint8_t>> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-max_total_time=", 0) == 0) max_time = std::stod(a.substr(16));
    else if (a.rfind("-runs=", 0) == 0) runs = std::stoll(a.substr(6));
    else if (a.rfind("-seed=", 0) == 0) seed = std::stoull(a.substr(6));
    else if (a[0] == '-') continue;  // libFuzzer flags this driver does not have
    else if (fs::is_directory(a))
      for (const auto& e : fs::directory_iterator(a)) {
        if (!e.is_regular_file() || e.file_size() > (64u << 20)) continue;
        std::ifstream f(e.path(), std::ios::binary);
        corpus.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
      }
  }
  if (corpus.empty()) corpus.push_back({0});
  std::printf("driver: seed %llu, %zu corpus inputs\n", static_cast<unsigned long long>(seed), corpus.size());
  for (const auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
  std::mt19937_64 rng(seed);
  const uint8_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, '"', '{', '}', '[', ']', ',', ':', '0', '9', '-', 'e', '\\'};
  const auto start = std::chrono::steady_clock::now();
  long long done = 0;
  std::vector<uint8_t> x;
  while (runs < 0 || done < runs) {
    if ((done & 255) == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > max_time)
      break;
    x = corpus[rng() % corpus.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < edits; ++k) {
      const size_t at = x.empty() ? 0 : rng() % x.size();
      switch (rng() % 6) {
        case 0: if (!x.empty()) x[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: if (!x.empty()) x[at] = interesting[rng() % sizeof interesting]; break;
        case 2: x.insert(x.begin() + static_cast<long>(at), static_cast<uint8_t>(rng())); break;
        case 3: if (x.size() > 1) x.erase(x.begin() + static_cast<long>(at), x.begin() + static_cast<long>(std::min(x.size(), at + 1 + rng() % 16))); break;
        case 4: {  // splice: a slice of another input over this one
          const auto& o = corpus[rng() % corpus.size()];
          if (o.empty() || x.empty()) break;
          const size_t from = rng() % o.size(), len = std::min<size_t>(o.size() - from, 1 + rng() % 64);
          for (size_t j = 0; j < len && at + j < x.size(); ++j) x[at + j] = o[from + j];
          break;
        }
        case 5: if (x.size() > 1 && at > 0) x.resize(at); break;  // truncate (byte 0 keeps the mode)
      }
    }
    if (x.empty()) x.push_back(0);
    LLVMFuzzerTestOneInput(x.data(), x.size());
    ++done;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("driver: %lld mutated runs in %.1f s (%.0f/s), no crash\n", done, secs, done / (secs > 0 ? secs : 1));
  return 0;
}

// Load-time checks of the statistics arrays beyond dtype and shape: values a post-processing
// kernel cannot use correctly or in bounded time are refused when the bundle is opened, naming
// the array, instead of giving NaN scores or a 100x slower search on every image.
#pragma once

#include <cstdint>
#include <string>

#include "edge_sdk/runtime/safetensors.hpp"

namespace edge {

// Every float32 / float16 array holds only finite values (a NaN or infinity in a mean, factor,
// bank or mask makes every score NaN). `source` names the arrays file.
void check_arrays_finite(const SafeTensors& arrays, const std::string& source);

// The k-NN kernel's float32 scan is certified by an error bound that grows with the largest
// centred bank norm B: E = (2d + 4) u (B^2 + 2 |q| B) (u = 2^-24; cpp/src/kernels/knn.cpp). When E
// is not small against the squared distances, queries fail to certify and are re-scanned up to the
// whole bank in double (4.2e12 in one bank value: each image 90x slower). The data's scale S is
// the median distance of the rows to the coordinate-wise median row (both over at most 4096
// evenly spaced rows: robust statistics need no more; an outlier does not move them,
// while it moves the mean the kernel centres on, and with it B and every query norm |q|, taken as
// |median - mean| + S). The bank is refused when
//   (2d + 4) u (B^2 + 2 |q| B) > kKnnMaxRelativeError * S^2,
// and when it is degenerate: S = 0 (at least half the rows are one and the same vector, e.g. an
// all-zero bank), where distances tie and nothing certifies either.
// A row repeated more than kKnnMaxRowCopies times ties with itself beyond the kernel's spare
// candidates (KnnOptions::extra, 8): a query near it re-scans with 4x the candidates, repeatedly
// (every row 10 times: 2.6-9x slower per image). Duplicates never change a nearest distance.
constexpr double kKnnMaxRelativeError = 0.05;
constexpr int64_t kKnnMaxRowCopies = 8;
void check_knn_bank(const Tensor& bank, const std::string& array_name, const std::string& source);

}  // namespace edge

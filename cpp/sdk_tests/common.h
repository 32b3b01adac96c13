/* Shared helpers of the SDK consumer tests (plain C99): a check macro that counts failures, and
 * the fixture reader (raw uint8 HWC images written by make_fixtures.py). */
#ifndef EDGE_SDK_TESTS_COMMON_H
#define EDGE_SDK_TESTS_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edge_sdk/c_api.h>

static int g_failures = 0;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      ++g_failures;                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              edge_last_error());                                                     \
    }                                                                                 \
  } while (0)

#define CHECK_STATUS(expr, expected)                                                               \
  do {                                                                                             \
    edge_status s_ = (expr);                                                                       \
    if (s_ != (expected)) {                                                                        \
      ++g_failures;                                                                                \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: %s)\n", __FILE__, __LINE__, #expr, \
              edge_status_name(s_), edge_status_name(expected), edge_last_error());                \
    }                                                                                              \
  } while (0)

/* n images of h x w x c uint8, one after the other. */
typedef struct fixture_images {
  int n, h, w, c;
  unsigned char* data;
} fixture_images;

static int read_fixture(const char* dir, const char* name, fixture_images* out) {
  char path[4096];
  FILE* f;
  size_t bytes;
  memset(out, 0, sizeof *out);
  snprintf(path, sizeof path, "%s/%s.txt", dir, name);
  f = fopen(path, "r");
  if (!f || fscanf(f, "%d %d %d %d", &out->n, &out->h, &out->w, &out->c) != 4) {
    fprintf(stderr, "cannot read %s\n", path);
    if (f) fclose(f);
    return 0;
  }
  fclose(f);
  bytes = (size_t)out->n * (size_t)out->h * (size_t)out->w * (size_t)out->c;
  out->data = (unsigned char*)malloc(bytes);
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  f = fopen(path, "rb");
  if (!f || !out->data || fread(out->data, 1, bytes, f) != bytes) {
    fprintf(stderr, "cannot read %zu bytes from %s\n", bytes, path);
    if (f) fclose(f);
    return 0;
  }
  fclose(f);
  return 1;
}

static edge_image fixture_image(const fixture_images* fx, int i) {
  edge_image im;
  memset(&im, 0, sizeof im);
  im.data = fx->data + (size_t)i * (size_t)fx->h * (size_t)fx->w * (size_t)fx->c;
  im.height = fx->h;
  im.width = fx->w;
  im.channels = fx->c;
  im.dtype = EDGE_DTYPE_UINT8;
  im.row_stride = 0;
  return im;
}

static int same_float(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static int same_result(const edge_image_result* a, const edge_image_result* b) {
  return same_float(a->score, b->score) && same_float(a->normalized, b->normalized) && a->verdict == b->verdict &&
         a->status == b->status && a->review == b->review;
}

#endif

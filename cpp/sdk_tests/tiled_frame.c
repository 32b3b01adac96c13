/* Tiled bundles through the C ABI (driven by tests/test_tiling.py): opens BUNDLE, checks the ABI 1.3
 * tiling fields of edge_output_spec (and that an ABI 1.2-sized struct gets nothing past its size),
 * judges the frames of FRAMES.bin ("N H W C" in FRAMES.txt) in one edge_run and writes, per frame,
 * "score normalized verdict" lines to stdout and the stitched heatmaps (float32, frame after frame)
 * to OUT.bin.
 *
 * Usage: tiled_frame BUNDLE FRAMES_PREFIX OUT.bin */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_sdk/c_api.h"

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (%s)\n", edge_last_error()); return 1; } while (0)

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s BUNDLE FRAMES_PREFIX OUT.bin\n", argv[0]);
    return 2;
  }
  if (edge_abi_version() < EDGE_ABI_VERSION || EDGE_ABI_VERSION_MINOR < 3) FAIL("ABI 1.3 expected");
  edge_open_options opt;
  edge_open_options_init(&opt);
  opt.heatmaps = 1;
  opt.max_batch = 2;
  opt.threads = 1;
  edge_runtime* rt = NULL;
  if (edge_open(argv[1], &opt, &rt) != EDGE_OK) FAIL("edge_open failed");

  edge_output_spec spec;
  edge_output_spec_init(&spec);
  if (edge_output_spec_get(rt, &spec) != EDGE_OK) FAIL("edge_output_spec_get failed");
  printf("spec %d %d %d %d %d %d %d %d\n", spec.tile_merge, spec.tile_height, spec.tile_width, spec.tile_stride_y,
         spec.tile_stride_x, spec.region_count, spec.frame_height, spec.frame_width);
  /* A host built against ABI 1.2 passes the older size: the fields after it stay untouched. */
  edge_output_spec old;
  memset(&old, 0x5a, sizeof old);
  old.struct_size = (uint32_t)(offsetof(edge_output_spec, reserved) + sizeof(int32_t));
  if (edge_output_spec_get(rt, &old) != EDGE_OK) FAIL("edge_output_spec_get (1.2 size) failed");
  {
    const unsigned char* p = (const unsigned char*)&old;
    size_t k;
    for (k = old.struct_size; k < sizeof old; ++k)
      if (p[k] != 0x5a) FAIL("byte %u past an ABI 1.2 struct_size was written", (unsigned)k);
    if (old.region_count != spec.region_count) FAIL("ABI 1.2 struct: region_count differs");
  }
  /* The tiles are the regions: their rectangles. */
  {
    int32_t k;
    for (k = 0; k < spec.region_count; ++k) {
      edge_region_spec r;
      edge_region_spec_init(&r);
      if (edge_region_spec_get(rt, k, &r) != EDGE_OK) FAIL("edge_region_spec_get failed");
      printf("tile %d %d %d %d\n", r.y, r.x, r.height, r.width);
    }
  }

  int n = 0, h = 0, w = 0, c = 0;
  char path[4096];
  snprintf(path, sizeof path, "%s.txt", argv[2]);
  FILE* f = fopen(path, "r");
  if (!f || fscanf(f, "%d %d %d %d", &n, &h, &w, &c) != 4) FAIL("cannot read %s", path);
  fclose(f);
  const size_t frame_bytes = (size_t)h * (size_t)w * (size_t)c;
  unsigned char* pixels = malloc(frame_bytes * (size_t)n);
  snprintf(path, sizeof path, "%s.bin", argv[2]);
  f = fopen(path, "rb");
  if (!f || fread(pixels, 1, frame_bytes * (size_t)n, f) != frame_bytes * (size_t)n) FAIL("cannot read %s", path);
  fclose(f);

  edge_image* images = calloc((size_t)n, sizeof *images);
  int i;
  for (i = 0; i < n; ++i) {
    images[i].data = pixels + frame_bytes * (size_t)i;
    images[i].height = h;
    images[i].width = w;
    images[i].channels = c;
    images[i].dtype = EDGE_DTYPE_UINT8;
  }
  size_t floats = 0;
  if (edge_heatmap_floats(rt, images, (size_t)n, &floats) != EDGE_OK) FAIL("edge_heatmap_floats failed");
  if (floats != (size_t)n * (size_t)h * (size_t)w) FAIL("heatmap floats %zu, expected frame-sized maps", floats);
  edge_image_result* results = calloc((size_t)n, sizeof *results);
  edge_region_result* regions = calloc((size_t)n * (size_t)spec.region_count, sizeof *regions);
  float* heat = malloc(floats * sizeof(float));
  edge_batch_outputs out;
  edge_batch_outputs_init(&out);
  out.results = results;
  out.results_capacity = (size_t)n;
  out.regions = regions;
  out.regions_capacity = (size_t)n * (size_t)spec.region_count;
  out.heatmaps = heat;
  out.heatmaps_capacity = floats;
  if (edge_run(rt, images, (size_t)n, 0.0, &out) != EDGE_OK) FAIL("edge_run failed");
  for (i = 0; i < n; ++i) {
    if (results[i].heatmap_height != h || results[i].heatmap_width != w) FAIL("heatmap of frame %d not frame-sized", i);
    printf("frame %.9g %.9g %d\n", results[i].score, results[i].normalized, results[i].verdict);
  }
  f = fopen(argv[3], "wb");
  for (i = 0; i < n; ++i) fwrite(heat + results[i].heatmap_offset, sizeof(float), (size_t)h * (size_t)w, f);
  fclose(f);
  free(heat);
  free(regions);
  free(results);
  free(images);
  free(pixels);
  edge_close(rt);
  return 0;
}

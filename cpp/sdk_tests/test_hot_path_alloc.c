/* Heap allocations on the hot path, counted with malloc hooks: this program interposes malloc,
 * calloc, realloc and the aligned allocators (C++ operator new goes through them), warms a
 * runtime up, then counts every allocation made by any thread during N further cycles. Each
 * allocation's call stack is walked to the first frame outside libc / libstdc++ / libgcc, which
 * names the library that asked for the memory.
 *
 * Asserted: libedge_sdk (the C ABI layer, the runtime pipeline, the network backend and the
 * kernels) makes none. Reported: those made inside ONNX Runtime's Run (its execution frame) or
 * OpenVINO's infer, which are not ours to remove.
 *
 * usage: test_hot_path_alloc FIXTURES_DIR [CYCLES [BACKEND]]   (BACKEND: onnxruntime, openvino) */
#include <dlfcn.h>
#include <execinfo.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edge_sdk/c_api.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

enum { kMaxEvents = 65536, kFrames = 24 };

static int g_counting = 0;            /* read/written with __atomic builtins */
static long g_count = 0;
static void* g_stacks[kMaxEvents][kFrames];
static int g_depth[kMaxEvents];
static __thread int t_inside = 0;     /* no recursion through backtrace() */

static void note(void) {
  long i;
  if (!__atomic_load_n(&g_counting, __ATOMIC_ACQUIRE) || t_inside) return;
  t_inside = 1;
  i = __atomic_fetch_add(&g_count, 1, __ATOMIC_RELAXED);
  if (i < kMaxEvents) g_depth[i] = backtrace(g_stacks[i], kFrames);
  t_inside = 0;
}

void* malloc(size_t n) { note(); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { note(); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { note(); return __libc_realloc(p, n); }
void free(void* p) { __libc_free(p); }
void* memalign(size_t a, size_t n) { note(); return __libc_memalign(a, n); }
void* aligned_alloc(size_t a, size_t n) { note(); return __libc_memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
  void* p;
  note();
  p = __libc_memalign(a, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

/* The library an address belongs to, shortened to its file name. */
static const char* object_of(void* addr) {
  Dl_info info;
  const char* slash;
  if (!dladdr(addr, &info) || !info.dli_fname) return "?";
  slash = strrchr(info.dli_fname, '/');
  return slash ? slash + 1 : info.dli_fname;
}

static int is_runtime_support(const char* obj) {
  return strncmp(obj, "libc.so", 7) == 0 || strncmp(obj, "libstdc++", 9) == 0 || strncmp(obj, "libgcc", 6) == 0 ||
         strncmp(obj, "ld-linux", 8) == 0 || strncmp(obj, "libm.so", 7) == 0;
}

/* Attributes the counted allocations; returns how many came from libedge_sdk. */
static long attribute(long cycles, const char* what) {
  long n = __atomic_load_n(&g_count, __ATOMIC_ACQUIRE), i, ours = 0, ort = 0, ov = 0, other = 0;
  int f;
  uintptr_t sites[16];
  long site_count[16] = {0};
  int n_sites = 0, s;
  for (i = 0; i < n && i < kMaxEvents; ++i) {
    const char* owner = "?";
    /* frames 0-1 are note() and the interposed allocator in this program */
    for (f = 2; f < g_depth[i]; ++f) {
      const char* obj = object_of(g_stacks[i][f]);
      if (!is_runtime_support(obj)) {
        owner = obj;
        break;
      }
    }
    if (strstr(owner, "libedge_sdk")) {
      /* Group by the allocating frame inside libedge_sdk (its offset, for addr2line). */
      Dl_info info;
      uintptr_t off = 0;
      int s;
      if (dladdr(g_stacks[i][f], &info)) off = (uintptr_t)g_stacks[i][f] - (uintptr_t)info.dli_fbase;
      for (s = 0; s < n_sites && sites[s] != off; ++s) {
      }
      if (s == n_sites && n_sites < 16) sites[n_sites++] = off;
      if (s < 16) ++site_count[s];
      ++ours;
    } else if (strstr(owner, "onnxruntime")) {
      ++ort;
    } else if (strstr(owner, "openvino") || strstr(owner, "libtbb")) {
      ++ov;
    } else {
      ++other;
    }
  }
  printf("%s: %ld allocations in %ld cycles (%.1f per cycle): libedge_sdk %ld, onnxruntime %ld, openvino %ld, "
         "other %ld\n", what, n, cycles, (double)n / (double)cycles, ours, ort, ov, other);
  for (s = 0; s < n_sites; ++s)
    printf("  libedge_sdk allocation site +0x%lx: %ld (addr2line -f -C -e libedge_sdk.so 0x%lx)\n", (unsigned long)sites[s],
           site_count[s], (unsigned long)sites[s]);
  if (n > kMaxEvents) {
    printf("  only the first %d allocations could be attributed: run fewer cycles\n", kMaxEvents);
    return ours + 1;  /* cannot vouch for the rest */
  }
  return ours;
}

static int read_images(const char* dir, const char* name, int* n, int* h, int* w, int* c, unsigned char** data) {
  char path[4096];
  FILE* f;
  size_t bytes;
  snprintf(path, sizeof path, "%s/%s.txt", dir, name);
  f = fopen(path, "r");
  if (!f || fscanf(f, "%d %d %d %d", n, h, w, c) != 4) return 0;
  fclose(f);
  bytes = (size_t)*n * (size_t)*h * (size_t)*w * (size_t)*c;
  *data = (unsigned char*)__libc_malloc(bytes);
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  f = fopen(path, "rb");
  if (!f || fread(*data, 1, bytes, f) != bytes) return 0;
  fclose(f);
  return 1;
}

/* Opens `bundle`, runs `warm` cycles, then counts the allocations of `cycles` more. */
typedef struct run_config {
  int threads, contexts;
  double deadline_ms;
} run_config;

static const char* g_backend = "onnxruntime";

/* One cycle: 4 images through edge_run, or with `frames` > 0 an acquisition of that many frames
   (the first `frames` images) through edge_run_acquisition, judged with its 2 rank images. */
static edge_status cycle(edge_runtime* rt, const edge_image* images, int frames, edge_batch_outputs* out) {
  return frames ? edge_run_acquisition(rt, images, (size_t)frames, 0, out) : edge_run(rt, images, 4, 0, out);
}

static long measure(const char* dir, const char* bundle, const char* images_name, int heatmaps, int frames,
                    int cycles, const char* what_kind, run_config cfg) {
  char what[256];
  char path[4096];
  edge_open_options opt;
  edge_runtime* rt = NULL;
  edge_image images[5];
  edge_image_result results[5];
  edge_region_result regions[5 * 8];
  float* heat = NULL;
  size_t floats = 0;
  edge_batch_outputs out;
  int n, h, w, c, i, k;
  unsigned char* data = NULL;
  long ours;

  if (!read_images(dir, images_name, &n, &h, &w, &c, &data)) {
    fprintf(stderr, "cannot read %s/%s\n", dir, images_name);
    return -1;
  }
  snprintf(what, sizeof what, "%s [%s, threads %d, contexts %d, deadline %.0f ms]", what_kind, g_backend, cfg.threads,
           cfg.contexts, cfg.deadline_ms);
  snprintf(path, sizeof path, "%s/%s", dir, bundle);
  edge_open_options_init(&opt);
  opt.threads = cfg.threads;
  opt.contexts = cfg.contexts;
  opt.deadline_ms = cfg.deadline_ms;
  opt.heatmaps = heatmaps;
  /* two batches a cycle; an acquisition's k + 2 images in one (a batch size that changes every call
     makes OpenVINO reshape, allocating inside it) */
  opt.max_batch = frames ? frames + 2 : 2;
  opt.backend = g_backend;
  if (edge_open(path, &opt, &rt) != EDGE_OK) {
    fprintf(stderr, "edge_open %s: %s\n", path, edge_last_error());
    return -1;
  }
  for (i = 0; i < 5; ++i) {
    memset(&images[i], 0, sizeof images[i]);
    images[i].data = data + (size_t)(i % n) * (size_t)h * (size_t)w * (size_t)c;
    images[i].height = h;
    images[i].width = w;
    images[i].channels = c;
    images[i].dtype = EDGE_DTYPE_UINT8;
  }
  if (heatmaps) {
    edge_heatmap_floats(rt, images, 5, &floats);  /* an acquisition's k + 2 = 5 images at most */
    heat = (float*)__libc_malloc(floats * sizeof(float));
  }
  edge_batch_outputs_init(&out);
  out.results = results;
  out.results_capacity = 5;
  out.regions = regions;
  out.regions_capacity = sizeof regions / sizeof regions[0];
  out.heatmaps = heat;
  out.heatmaps_capacity = floats;
  /* Warm-up. Kernel scratch is per thread and grows on first use: with several pool threads, a
     worker that has not yet run a chunk of some kernel allocates the first time it does (seen:
     1-5 allocations in the first 200 cycles after a 5-cycle warm-up at 2 or 4 threads), so the
     warm-up lasts until every worker has run each kernel, in practice a few dozen cycles. */
  for (k = 0; k < (cfg.threads > 1 ? 50 : 5); ++k) cycle(rt, images, frames, &out);
  __atomic_store_n(&g_count, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&g_counting, 1, __ATOMIC_RELEASE);
  for (k = 0; k < cycles; ++k)
    if (cycle(rt, images, frames, &out) != EDGE_OK) break;
  __atomic_store_n(&g_counting, 0, __ATOMIC_RELEASE);
  if (k != cycles) {
    fprintf(stderr, "%s: cycle %d failed: %s\n", what, k, edge_last_error());
    return -1;
  }
  ours = attribute(cycles, what);
  edge_close(rt);
  __libc_free(heat);
  __libc_free(data);
  if (n > kMaxEvents) {
    printf("  only the first %d allocations could be attributed: run fewer cycles\n", kMaxEvents);
    return ours + 1;  /* cannot vouch for the rest */
  }
  return ours;
}

int main(int argc, char** argv) {
  /* Every configuration a line runs: kernel threads 1, 2 and 4; two contexts with a deadline (the
     worker threads and the cancellation path are in the counted window too). */
  static const run_config configs[] = {{1, 1, 0.0}, {2, 1, 0.0}, {4, 1, 0.0}, {2, 2, 5000.0}};
  static const struct {
    const char* bundle;
    const char* images;
    int heatmaps, frames;
    const char* what;
  } cases[] = {
      {"plain", "plain_images", 0, 0, "plain bundle, scores only"},
      {"plain", "plain_images", 1, 0, "plain bundle, with heatmaps"},
      {"regions", "frames", 1, 0, "regions bundle (3 regions a frame), with heatmaps"},
      {"kind_knn_plain", "plain_images", 1, 0, "knn_plain bundle, with heatmaps"},
      {"kind_mahalanobis", "plain_images", 1, 0, "mahalanobis bundle, with heatmaps"},
      {"kind_mhbc", "plain_images", 1, 0, "mhbc bundle, with heatmaps"},
      {"kind_mask", "plain_images", 1, 0, "mask bundle (two networks), with heatmaps"},
      {"kind_knn", "plain_images", 1, 0, "knn bundle (PatchCore reweighting), with heatmaps"},
      {"acquisition", "plain_images", 1, 3, "acquisition of 3 frames + 2 rank images (edge_run_acquisition)"},
  };
  int cycles;
  long total = 0;
  size_t i, j;
  void* probe[4];
  if (argc < 2) {
    fprintf(stderr, "usage: %s FIXTURES_DIR [CYCLES [BACKEND]]\n", argv[0]);
    return 2;
  }
  cycles = argc > 2 ? atoi(argv[2]) : 200;
  if (cycles < 1 || cycles > 100000) {
    fprintf(stderr, "CYCLES: expected 1..100000, got %s\n", argv[2]);
    return 2;
  }
  if (argc > 3) g_backend = argv[3];
  backtrace(probe, 4); /* loads libgcc_s now, not inside a counted window */
  for (j = 0; j < sizeof configs / sizeof configs[0]; ++j)
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
      /* One thread: none at all. Several: only the one-time growth of per-thread kernel scratch
         (edge_sdk/scratch.hpp, a few buffers a thread, grow-only) on a worker's late first use of a
         kernel; anything per cycle would be >= the number of cycles. */
      const long allowed = configs[j].threads > 1 ? 4L * configs[j].threads : 0;
      long r = measure(argv[1], cases[i].bundle, cases[i].images, cases[i].heatmaps, cases[i].frames, cycles,
                       cases[i].what, configs[j]);
      if (r < 0) return 1;
      if (r > allowed) {
        printf("  more than the %ld one-time scratch allocations allowed here\n", allowed);
        total += r;
      } else if (r > 0)
        printf("  %ld one-time scratch allocation(s) of late-starting workers (at most %ld allowed)\n", r, allowed);
    }
  if (total) {
    printf("FAIL: libedge_sdk allocates on the hot path (%ld allocations)\n", total);
    return 1;
  }
  printf("libedge_sdk: no heap allocation per cycle (%d cycles after warm-up, backend %s), %zu bundles x %zu "
         "configurations\n", cycles, g_backend, sizeof cases / sizeof cases[0], sizeof configs / sizeof configs[0]);
  return 0;
}

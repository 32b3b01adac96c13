/* Opens each bundle named on the command line through the C ABI (edge_open) and prints one line
 * per bundle: "<index>\t<status name>\t<edge_last_error()>". The host environment decides the
 * rest (EDGE_SDK_TRUSTED_KEYS, EDGE_SDK_ONNXRUNTIME_LIB), as in a real host. tests/test_signing.py
 * and tests/test_bundle_hardening.py build and run it to check what a C host sees: which bundles
 * are refused, and that the messages name the file and are valid UTF-8 (checked by the caller).
 * A first argument "--trusted-keys=LIST" passes LIST as edge_open_options.trusted_keys. */
#include <stdio.h>
#include <string.h>

#include <edge_sdk/c_api.h>

int main(int argc, char** argv) {
  int i, first = 1;
  const char* keys = NULL;
  if (argc > 1 && strncmp(argv[1], "--trusted-keys=", 15) == 0) {
    keys = argv[1] + 15;
    first = 2;
  }
  for (i = first; i < argc; ++i) {
    edge_runtime* rt = NULL;
    edge_open_options o;
    edge_status s;
    edge_open_options_init(&o);
    o.threads = 1;
    o.trusted_keys = keys;
    s = edge_open(argv[i], &o, &rt);
    printf("%d\t%s\t%s\n", i - first + 1, edge_status_name(s), s == EDGE_OK ? "" : edge_last_error());
    if (rt) edge_close(rt);
  }
  return 0;
}

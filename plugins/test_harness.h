/* A tiny test harness for plugin tests: loads the library the way the host does. */
#include <decoupled_plugin.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        checks++;                                          \
        if (!(cond)) {                                     \
            failures++;                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fprintf(stderr, "\n");                         \
        }                                                  \
    } while (0)

static const dc_plugin *load_plugin(const char *path) {
    void *h = dlopen(path, RTLD_NOW);
    if (!h) { fprintf(stderr, "cannot load %s: %s\n", path, dlerror()); exit(2); }
    dc_plugin_entry_fn entry = (dc_plugin_entry_fn)dlsym(h, DC_PLUGIN_ENTRY_SYMBOL);
    if (!entry) { fprintf(stderr, "%s: no entry symbol\n", path); exit(2); }
    const dc_plugin_library *lib = entry();
    CHECK(lib->abi_version == DC_PLUGIN_ABI_VERSION, "ABI version %u", lib->abi_version);
    CHECK(lib->struct_size == sizeof(dc_plugin_library), "library struct size");
    CHECK(lib->plugin_count == 1, "one plugin");
    return &lib->plugins[0];
}

static int finish(void) {
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

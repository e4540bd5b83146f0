/* The ABI is header-only; compiling it here checks the header is valid C on every build. */
#include "decoupled_plugin.h"

_Static_assert(offsetof(dc_plugin_library, abi_version) == 0, "ABI version must come first");
_Static_assert(offsetof(dc_plugin_library, struct_size) == 4, "struct size must come second");

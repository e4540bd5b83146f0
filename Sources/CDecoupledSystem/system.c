/* The shims are static inline in the header; compiling the header here checks it on every
 * build (SwiftPM also needs one source file per C target). */
#include "CDecoupledSystem.h"

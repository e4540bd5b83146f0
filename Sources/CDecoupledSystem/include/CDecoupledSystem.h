/* What Swift cannot do directly, as small `dc_`-prefixed shims: variadic system calls, and
 * the per-thread floating-point control register (neither Swift nor libc sets FTZ/DAZ). */
#ifndef C_DECOUPLED_SYSTEM_H
#define C_DECOUPLED_SYSTEM_H

#include <errno.h>
#include <stdint.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* Asks the kernel to send `signal` to this process when the thread that started it exits
 * (prctl(PR_SET_PDEATHSIG), Linux only; prctl is variadic, so Swift cannot call it).
 * Returns 0, or -1 with errno set (ENOSYS on systems without it). The setting survives exec
 * but not fork, and fires for the death of the parent *thread*: a parent must start such
 * children from a thread that lives as long as it does. */
static inline int dc_set_parent_death_signal(int signal) {
#ifdef __linux__
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
#else
    (void)signal;
    errno = ENOSYS;
    return -1;
#endif
}

/* Subnormal flushing on the calling thread. Flushing makes results below FLT_MIN zero
 * (x86 MXCSR FTZ, bit 15) and reads subnormal inputs as zero (DAZ, bit 6); AArch64's
 * FPCR.FZ (bit 24) does both. The register belongs to the thread and governs all SSE, AVX
 * and NEON arithmetic on it, OpenBLAS's included; its other bits (rounding, exception
 * masks) are left alone. Elsewhere flushing is unsupported: get returns 0, set does nothing.
 * The asm is volatile with a memory clobber so that memory accesses are not moved across a
 * mode change. */
#if defined(__x86_64__)
#define DC_FLUSH_SUBNORMALS_SUPPORTED 1
typedef uint32_t dc_fp_control;
#define DC_FP_FLUSH_BITS ((dc_fp_control)((1u << 15) | (1u << 6)))
#define DC_FP_CONTROL_READ(r) __asm__ __volatile__("stmxcsr %0" : "=m"(r) : : "memory")
#define DC_FP_CONTROL_WRITE(r) __asm__ __volatile__("ldmxcsr %0" : : "m"(r) : "memory")
#elif defined(__aarch64__)
#define DC_FLUSH_SUBNORMALS_SUPPORTED 1
typedef uint64_t dc_fp_control;
#define DC_FP_FLUSH_BITS ((dc_fp_control)1 << 24)
#define DC_FP_CONTROL_READ(r) __asm__ __volatile__("mrs %0, fpcr" : "=r"(r) : : "memory")
#define DC_FP_CONTROL_WRITE(r) __asm__ __volatile__("msr fpcr, %0" : : "r"(r) : "memory")
#else
#define DC_FLUSH_SUBNORMALS_SUPPORTED 0
#endif

/* 1 when this architecture can flush subnormals, else 0. */
static inline int dc_flush_subnormals_supported(void) { return DC_FLUSH_SUBNORMALS_SUPPORTED; }

/* 1 when the calling thread flushes subnormals, else 0. */
static inline int dc_flush_subnormals_get(void) {
#if DC_FLUSH_SUBNORMALS_SUPPORTED
    dc_fp_control r;
    DC_FP_CONTROL_READ(r);
    return (r & DC_FP_FLUSH_BITS) == DC_FP_FLUSH_BITS;
#else
    return 0;
#endif
}

/* Turns flushing on (nonzero) or off for the calling thread. The register is written only
 * when that changes it: a write costs far more than a read. */
static inline void dc_flush_subnormals_set(int on) {
#if DC_FLUSH_SUBNORMALS_SUPPORTED
    dc_fp_control old, want;
    DC_FP_CONTROL_READ(old);
    want = on ? (old | DC_FP_FLUSH_BITS) : (old & ~DC_FP_FLUSH_BITS);
    if (want != old) DC_FP_CONTROL_WRITE(want);
#else
    (void)on;
#endif
}

/* Replaces the Swift runtime's crash handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT
 * and SIGTRAP with one that writes "decoupled: fatal signal SIGSEGV (11): ..." to stderr
 * and ends the process with that signal at once. The runtime's handler suspends every thread
 * to print a backtrace, and when it cannot (several worker threads inside a crashing plugin)
 * the process never exits. Call it first thing in main. Returns 1 when installed, 0 when
 * SWIFT_BACKTRACE is set (the user asked for the runtime's backtraces), -1 on error. */
int dc_install_fatal_signal_handlers(void);

#endif

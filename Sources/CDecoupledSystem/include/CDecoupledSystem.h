/* Operating-system calls Swift cannot make directly (variadic C functions), as small
 * `dc_`-prefixed shims. */
#ifndef C_DECOUPLED_SYSTEM_H
#define C_DECOUPLED_SYSTEM_H

#include <errno.h>
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

/* Replaces the Swift runtime's crash handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT
 * and SIGTRAP with one that writes "decoupled: fatal signal SIGSEGV (11): ..." to stderr
 * and ends the process with that signal at once. The runtime's handler suspends every thread
 * to print a backtrace, and when it cannot (several worker threads inside a crashing plugin)
 * the process never exits. Call it first thing in main. Returns 1 when installed, 0 when
 * SWIFT_BACKTRACE is set (the user asked for the runtime's backtraces), -1 on error. */
int dc_install_fatal_signal_handlers(void);

#endif

/* The inline shims are compiled here too, which checks the header on every build (SwiftPM
 * also needs one source file per C target). */
#include "CDecoupledSystem.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dc_fatal_signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGTRAP: return "SIGTRAP";
    default: return "signal";
    }
}

static size_t dc_append(char *buf, size_t at, size_t cap, const char *s) {
    while (*s && at < cap) buf[at++] = *s++;
    return at;
}

/* Set by the first thread to enter the handler. */
static volatile int dc_fatal_signal_taken = 0;

/* Ends the process with `sig`'s default action (and a core dump where enabled). */
static void dc_die_with(int sig) {
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
}

/* Runs in the crashing thread: only async-signal-safe calls (write, signal, raise, nanosleep,
 * _exit). Several worker threads often fault at once (they run the same plugin); the
 * default action must come back only after the message is written, or a second thread's
 * fault ends the process silently. So the first thread writes and then dies with the
 * signal; any other (or a fault inside the handler itself) waits up to a second for that and
 * then dies with its own signal, so nothing can hang here. */
static void dc_fatal_signal_handler(int sig) {
    if (__atomic_exchange_n(&dc_fatal_signal_taken, 1, __ATOMIC_SEQ_CST)) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        for (int i = 0; i < 100; i++) nanosleep(&pause, NULL);
        dc_die_with(sig);
    }
    char buf[192];
    char number[3] = {(char)('0' + sig / 10 % 10), (char)('0' + sig % 10), 0}; /* signals are < 100 */
    size_t n = 0;
    n = dc_append(buf, n, sizeof buf, "decoupled: fatal signal ");
    n = dc_append(buf, n, sizeof buf, dc_fatal_signal_name(sig));
    n = dc_append(buf, n, sizeof buf, " (");
    n = dc_append(buf, n, sizeof buf, sig < 10 ? number + 1 : number);
    n = dc_append(buf, n, sizeof buf, "): crashed (in a plugin or in decoupled itself); exiting\n");
    ssize_t ignored = write(STDERR_FILENO, buf, n);
    (void)ignored;
    dc_die_with(sig);
}

static char dc_alternate_stack[64 * 1024];

int dc_install_fatal_signal_handlers(void) {
    if (getenv("SWIFT_BACKTRACE") != NULL) return 0;
    /* The calling (main) thread gets an alternate stack, so a stack overflow there is reported too. */
    stack_t st;
    memset(&st, 0, sizeof st);
    st.ss_sp = dc_alternate_stack;
    st.ss_size = sizeof dc_alternate_stack;
    (void)sigaltstack(&st, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dc_fatal_signal_handler;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESETHAND: the handler restores the default itself, after its message. */
    sa.sa_flags = SA_NODEFER | SA_ONSTACK;
    const int signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        if (sigaction(signals[i], &sa, NULL) != 0) return -1;
    }
    return 1;
}

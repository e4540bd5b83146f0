import CDecoupledSystem
import Foundation

/// SIGINT, SIGTERM and SIGUSR1 ask a run to stop after the current step and checkpoint
/// (Slurm sends USR1 before a time limit with `--signal`, TERM on preemption or requeue).
/// A second SIGINT exits at once with status 130: checkpoints are written to a temp file
/// and renamed, so an interrupted save never harms the last complete one.
public enum StopSignals {
    /// The signal that asked to stop, 0 for none. Written only by the handler.
    private static let received: UnsafeMutablePointer<sig_atomic_t> = {
        let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
        p.pointee = 0
        return p
    }()

    /// Installs the handlers (idempotent).
    public static func install() {
        _ = received  // initialise before any handler can run
        for sig in [SIGINT, SIGTERM, SIGUSR1] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                if sig == SIGINT && StopSignals.received.pointee == SIGINT { _exit(130) }
                StopSignals.received.pointee = sig
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
        // The signal mask is inherited through exec: a parent that blocks these (some test
        // runners and job launchers do) would leave a stop request pending forever.
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGINT, SIGTERM, SIGUSR1] { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        // A sweep runner (docs/sweeps.md) sets DECOUPLED_STOP_WITH_PARENT=<its pid>: its
        // children then get SIGTERM when it dies, even by SIGKILL, and checkpoint and stop
        // instead of writing runs nobody supervises. A parent already gone (getppid changed
        // before the request took effect) stops the run at once.
        if let value = ProcessInfo.processInfo.environment["DECOUPLED_STOP_WITH_PARENT"], let parent = pid_t(value),
           dc_set_parent_death_signal(SIGTERM) == 0, getppid() != parent {
            raise(SIGTERM)
        }
    }

    /// The pending stop request's signal name, if any.
    public static var pending: String? {
        switch received.pointee {
        case 0: return nil
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(received.pointee)"
        }
    }

    /// Exit status of a run stopped by a signal after writing its checkpoint: resumable.
    /// (75 is EX_TEMPFAIL in sysexits.h: "try again later".)
    public static let preemptedExitCode: Int32 = 75
    /// Exit status of a run that stopped on non-finite values (`nan_policy`).
    public static let divergedExitCode: Int32 = 3
}

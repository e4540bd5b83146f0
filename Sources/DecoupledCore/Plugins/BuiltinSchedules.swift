#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Learning-rate schedules: η as a function of t, the steps or epochs completed before the
// update (fractional epochs when the unit is epochs, so cosine schedules move every step as
// in SGDR). The update number k (0-based) uses η(k), as PyTorch does when its scheduler
// steps after each optimizer step. η drives both lr_t and schedule-scaled decoupled decay.

struct ConstantSchedule: Schedule {
    func multiplier(at t: Double) -> Double { 1 }
    func period(at t: Double) -> Double? { nil }
}

struct StepSchedule: Schedule {
    let stepSize: Double, gamma: Double
    func multiplier(at t: Double) -> Double { pow(gamma, (t / stepSize).rounded(.down)) }
    func period(at t: Double) -> Double? { nil }
}

struct MultiStepSchedule: Schedule {
    let milestones: [Double], gamma: Double
    func multiplier(at t: Double) -> Double { pow(gamma, Double(milestones.filter { $0 <= t }.count)) }
    func period(at t: Double) -> Double? { nil }
}

struct ExponentialSchedule: Schedule {
    let gamma: Double
    func multiplier(at t: Double) -> Double { pow(gamma, t) }
    func period(at t: Double) -> Double? { nil }
}

/// Cosine annealing to `minimum` over `length` (PyTorch CosineAnnealingLR, T_max), then flat.
struct CosineSchedule: Schedule {
    let length: Double, minimum: Double
    func multiplier(at t: Double) -> Double {
        minimum + (1 - minimum) * (1 + cos(Double.pi * min(t, length) / length)) / 2
    }
    func period(at t: Double) -> Double? { length }
}

/// SGDR: cosine within periods T_0, T_0·T_mult, … (PyTorch CosineAnnealingWarmRestarts).
struct CosineRestartsSchedule: Schedule {
    let first: Double, growth: Double, minimum: Double

    /// (time within the current period, the period's length); a loop rather than the
    /// closed log form so integer step counts land exactly on restarts.
    func position(_ t: Double) -> (Double, Double) {
        var tCur = t, ti = first
        while tCur >= ti {
            tCur -= ti
            ti *= growth
        }
        return (tCur, ti)
    }
    func multiplier(at t: Double) -> Double {
        let (tCur, ti) = position(t)
        return minimum + (1 - minimum) * (1 + cos(Double.pi * tCur / ti)) / 2
    }
    func period(at t: Double) -> Double? { position(t).1 }
}

/// Linear warm-up from `start` to 1 over `length`, then `base` shifted by `length`.
public struct WarmupSchedule: Schedule {
    let length: Double, start: Double, base: Schedule
    public func multiplier(at t: Double) -> Double {
        t < length ? start + (1 - start) * t / length : base.multiplier(at: t - length)
    }
    public func period(at t: Double) -> Double? { base.period(at: max(0, t - length)) }
}

/// A built-in schedule plugin: its declarations and a constructor.
final class BuiltinSchedule: SchedulePlugin {
    let name: String
    let version = "1.0.0"
    let kind = PluginKind.schedule
    let summary: String
    let hyperParameters: [HyperParameterSpec]
    private let build: (HyperValues) throws -> Schedule

    init(_ name: String, _ summary: String, _ hps: [HyperParameterSpec], _ build: @escaping (HyperValues) throws -> Schedule) {
        self.name = name
        self.summary = summary
        self.hyperParameters = hps
        self.build = build
    }

    func make(_ hp: HyperValues) throws -> Schedule { try build(hp) }

    static let positive = HyperParameterSpec.Kind.number(0...Double.infinity, openLower: true)
    static let minimum = HyperParameterSpec("min_multiplier", .number(0...1), default: .number(0), "η_min / η_max")
    static let gamma = HyperParameterSpec("gamma", .number(0...Double.infinity, openLower: true), default: .number(0.1),
                                          "multiplicative factor")

    static var all: [BuiltinSchedule] {
        [
            BuiltinSchedule("constant", "η = 1", []) { _ in ConstantSchedule() },
            BuiltinSchedule("step", "η = γ^⌊t/step_size⌋ (StepLR)",
                            [.init("step_size", positive, default: .number(30), "period of each decay"), gamma]) {
                StepSchedule(stepSize: $0.number("step_size"), gamma: $0.number("gamma"))
            },
            BuiltinSchedule("multistep", "η = γ^(milestones passed) (MultiStepLR)",
                            [.init("milestones", .numbers, default: .numbers([]), "times of each decay"), gamma]) { hp in
                let ms = hp.numbers("milestones")
                guard zip(ms, ms.dropFirst()).allSatisfy({ $0 < $1 }) else {
                    throw PluginError.invalid(key: "schedule.milestones", message: "must be increasing, got \(HyperValue.numbers(ms))")
                }
                return MultiStepSchedule(milestones: ms, gamma: hp.number("gamma"))
            },
            BuiltinSchedule("exponential", "η = γ^t (ExponentialLR)", [gamma]) { ExponentialSchedule(gamma: $0.number("gamma")) },
            BuiltinSchedule("cosine", "cosine annealing over t0 (CosineAnnealingLR, T_max = t0)",
                            [.init("t0", positive, default: .number(1), "length of the anneal"), minimum]) {
                CosineSchedule(length: $0.number("t0"), minimum: $0.number("min_multiplier"))
            },
            BuiltinSchedule("cosine_restarts", "SGDR: cosine with warm restarts (T_0 = t0, T_mult = t_mult)",
                            [.init("t0", positive, default: .number(1), "first period T_0"),
                             .init("t_mult", .number(1...Double.infinity), default: .number(1), "period growth T_mult"),
                             minimum]) {
                CosineRestartsSchedule(first: $0.number("t0"), growth: $0.number("t_mult"), minimum: $0.number("min_multiplier"))
            },
        ]
    }
}

import Foundation
import SwiftProtobuf

/// One scalar of an event: a chart name and its value at the event's step. TensorBoard
/// stores scalars as 32-bit floats (`Summary.Value.simple_value`).
public struct TensorBoardScalar: Equatable, Sendable {
    public var tag: String
    public var value: Float

    public init(tag: String, value: Float) {
        self.tag = tag
        self.value = value
    }
}

/// One record of a TensorBoard event file (an `Event` protocol buffer), as far as Decoupled
/// writes and reads them: the file version (first record of every file) or a summary of
/// scalars at a step. Summary values of other kinds (images, histograms, tensors) written by
/// other tools are listed by tag in `otherValueTags`, not decoded.
public struct TensorBoardEvent: Equatable, Sendable {
    /// The `file_version` every event file starts with.
    public static let fileVersion = "brain.Event:2"

    /// Seconds since the Unix epoch when the event was written.
    public var wallTime: Double
    public var step: Int64
    /// Set in a file-version event (then there are no scalars).
    public var fileVersion: String?
    public var scalars: [TensorBoardScalar]
    /// Tags of summary values that are not `simple_value` scalars.
    public var otherValueTags: [String]

    public init(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [TensorBoardScalar] = [],
                otherValueTags: [String] = []) {
        self.wallTime = wallTime
        self.step = step
        self.fileVersion = fileVersion
        self.scalars = scalars
        self.otherValueTags = otherValueTags
    }

    /// The event as `Event` protocol-buffer bytes.
    func serialized() throws -> Data {
        var event = Tensorboard_Event()
        event.wallTime = wallTime
        event.step = step
        if let fileVersion {
            event.fileVersion = fileVersion
        } else {
            var summary = Tensorboard_Summary()
            summary.value = scalars.map { s in
                var v = Tensorboard_Summary.Value()
                v.tag = s.tag
                v.simpleValue = s.value
                return v
            }
            event.summary = summary
        }
        return try event.serializedData()
    }

    /// Decodes `Event` protocol-buffer bytes; a message that does not parse throws.
    init(serialized data: Data) throws {
        let event = try Tensorboard_Event(serializedBytes: data)
        wallTime = event.wallTime
        step = event.step
        fileVersion = nil
        scalars = []
        otherValueTags = []
        switch event.what {
        case .fileVersion(let v)?: fileVersion = v
        case .summary(let summary)?:
            for v in summary.value {
                if case .simpleValue(let x)? = v.value {
                    scalars.append(TensorBoardScalar(tag: v.tag, value: x))
                } else {
                    otherValueTags.append(v.tag)
                }
            }
        case nil: break  // an event of a kind this subset leaves out (graph, session log, ...)
        }
    }
}

/// A damaged or unreadable event file: names the file and, for a bad record, the byte
/// offset where the record starts.
public struct EventFileError: Error, CustomStringConvertible, Equatable {
    public let file: String
    /// Where the bad record starts; nil when the file as a whole could not be read.
    public let offset: Int?
    public let message: String

    public init(file: String, offset: Int?, message: String) {
        self.file = file
        self.offset = offset
        self.message = message
    }

    public var description: String {
        offset.map { "\(file): record at byte offset \($0): \(message)" } ?? "\(file): \(message)"
    }
}

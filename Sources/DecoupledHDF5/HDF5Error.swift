/// An HDF5 failure, as a Swift error that says what we were doing, to which file and object,
/// and what HDF5 itself reported at the innermost level of its error stack (the place where the
/// problem was detected, e.g. "file signature not found" or "can't open object").
public struct HDF5Error: Error, CustomStringConvertible, Equatable {
    /// What the project was trying to do, e.g. "open dataset" or "read hyperslab".
    public var operation: String
    /// The file on disk, as the caller named it.
    public var file: String
    /// Path of the object inside the file ("/train/x"), or "" when the file itself is concerned.
    public var object: String
    /// HDF5's innermost error-stack message (or our own reason when the check is ours).
    public var reason: String
    /// The whole captured stack, innermost first ("function: major: minor: description").
    public var stack: [String]

    public init(operation: String, file: String, object: String, reason: String, stack: [String] = []) {
        self.operation = operation
        self.file = file
        self.object = object
        self.reason = reason
        self.stack = stack
    }

    public var description: String {
        var where_ = "'\(file)'"
        if !object.isEmpty { where_ = "'\(object)' in " + where_ }
        return "HDF5: cannot \(operation) \(where_): \(reason)"
    }
}

/// A violation of the dataset format (datasets/README.md), found when opening a dataset file.
/// Each case says which file and dataset/attribute, what was expected and what was found.
public struct DatasetFormatError: Error, CustomStringConvertible, Equatable {
    public var file: String
    /// Dataset or attribute concerned ("/train/x", "num_classes"), or "" for the file.
    public var object: String
    public var expected: String
    public var found: String

    public init(file: String, object: String, expected: String, found: String) {
        self.file = file
        self.object = object
        self.expected = expected
        self.found = found
    }

    public var description: String {
        let what = object.isEmpty ? "'\(file)'" : "'\(object)' in '\(file)'"
        return "dataset file \(what): expected \(expected), found \(found)"
    }
}

/// Bad input to an importer (IDX, CSV) or a bad argument to a data command.
public struct DataInputError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

// FS, CheckpointError and DirectoryLock (RunLock) live in DecoupledSystem, below DecoupledHDF5,
// so that every module writes files and locks directories the same way.
// Re-exported so that code importing DecoupledCheckpoint keeps seeing them under their names.
@_exported import DecoupledSystem

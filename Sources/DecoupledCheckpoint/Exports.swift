// FS, CheckpointError, DirectoryLock (RunLock) and the process runner live in DecoupledSystem,
// below DecoupledHDF5, so that every module writes files and starts processes the same way.
// Re-exported so that code importing DecoupledCheckpoint keeps seeing them under their names.
@_exported import DecoupledSystem

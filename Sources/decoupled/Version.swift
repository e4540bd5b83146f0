/// The version `decoupled --version` prints: the one definition, bumped by hand with each
/// release (a constant, so a build from a tarball without git reports the same).
let decoupledVersion = "0.1.0"

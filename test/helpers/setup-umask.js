// Files the tests write (config.toml among them) must not be group/world-writable: the runtime refuses such a
// config.toml. Pin the umask so the result does not depend on the machine's default.
process.umask(0o022);

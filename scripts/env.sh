# Sourced by the scripts: one profile and one target dir outside the clone, so RocksDB's C++ is
# compiled once per machine and shared by the server, the tests and every clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tideline/target}"
